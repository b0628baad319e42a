"""The OpenAPI 3 document of ``/api/v1``, derived from the views themselves.

Each view is marked with ``@documented(...)``: its summary, its query and body models (the same
pydantic models ``parse_query``/``parse_body`` validate with), its answers and the errors it may
give. ``build_document(app)`` walks the app's URL map and writes one operation per marked rule,
its path parameters read from the rule's converters. Nothing is described twice: a parameter
added to a model is in the document, a view without the mark fails a test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify
from pydantic import BaseModel
from werkzeug.routing import IntegerConverter, Rule

from server.openapi_page import DOCS_PAGE, DOCS_SCRIPT
from server.openapi_schemas import COMPONENTS, ERRORS, URI_TOO_LONG, json_reply, ref
from server.schema import body_schema, query_parameters
from server.security_headers import allow_inline_scripts, script_hash

blueprint = Blueprint("openapi", __name__, url_prefix="/api/v1")
blueprint.record_once(lambda state: allow_inline_scripts(state.app, lambda: [script_hash(DOCS_SCRIPT)]))

API_PREFIX = "/api/v1"
PUBLIC = ()  # an operation anyone may call (the login)
SECURED = ({"bearer": []}, {"session": []})
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "A retry with the same key returns the first result (200) and writes nothing",
}


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: dict[int, dict]
    errors: tuple[int, ...] = ()
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    # Media types the body comes in, and multipart file fields (name → description).
    body_media: tuple[str, ...] = ("application/json",)
    files: dict[str, dict] = field(default_factory=dict)
    path: dict[str, dict] = field(default_factory=dict)  # schemas of path parameters
    headers: tuple[dict, ...] = ()
    security: tuple[dict, ...] = SECURED

    def entry(self, rule: Rule) -> dict[str, Any]:
        parameters = [self._path_parameter(rule, name) for name in _path_names(rule)]
        parameters += list(self.headers)
        if self.query is not None:
            parameters += query_parameters(self.query)
        errors = set(self.errors) | ({400, 422} if self.query or self.body else set())
        if self.security:
            errors |= {401}
        operation: dict[str, Any] = {
            "summary": self.summary,
            "security": list(self.security),
            "responses": {
                **{str(status): reply for status, reply in self.responses.items()},
                **{str(code): {"$ref": f"#/components/responses/E{code}"} for code in sorted(errors)},
                **({"414": URI_TOO_LONG} if self.query else {}),
            },
        }
        if parameters:
            operation["parameters"] = parameters
        if self.body is not None:
            operation["requestBody"] = {"required": self.body_required, "content": self._body_content()}
        return operation

    def _path_parameter(self, rule: Rule, name: str) -> dict:
        converter = rule._converters[name]
        schema = self.path.get(name) or (
            {"type": "integer", "minimum": 0}
            if isinstance(converter, IntegerConverter)
            else {"type": "string"}
        )
        return {"name": name, "in": "path", "required": True, "schema": schema}

    def _body_content(self) -> dict:
        schema = body_schema(self.body)
        content = {}
        for media in self.body_media:
            if media == "multipart/form-data" and self.files:
                content[media] = {"schema": {**schema, "properties": {**schema["properties"], **self.files}}}
            else:
                content[media] = {"schema": schema}
        return content


def documented(**declared: Any) -> Callable:
    """Mark a view with its OpenAPI operation (see ``Operation``)."""
    operation = Operation(**declared)

    def mark(view: Callable) -> Callable:
        view.openapi_operation = operation  # type: ignore[attr-defined]
        return view

    return mark


def _path_names(rule: Rule) -> list[str]:
    return re.findall(r"<(?:[^>:]+:)?([A-Za-z_][A-Za-z0-9_]*)>", rule.rule)


def _openapi_path(rule: Rule) -> str:
    path = re.sub(r"<(?:[^>:]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", rule.rule)
    return path.removeprefix(API_PREFIX)


def undocumented_rules(app: Flask) -> list[str]:
    """``/api/v1`` rules without an operation (the document and its page, the feed's redirect)."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(API_PREFIX + "/")
        and getattr(app.view_functions[rule.endpoint], "openapi_operation", None) is None
    )


def build_document(app: Flask) -> dict:
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        operation = getattr(app.view_functions[rule.endpoint], "openapi_operation", None)
        if operation is None or not rule.rule.startswith(API_PREFIX + "/"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(_openapi_path(rule), {})[method.lower()] = operation.entry(rule)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "gridwatch API",
            "version": "1",
            "description": "网格化管理 — incidents, grids and the workflow of a county grid center. "
            "See docs/api.md and docs/workflow.md. Errors answer "
            '`{"error": {"code", "message", "field"}}`, the message in the language of '
            "`Accept-Language` (zh by default, en).",
        },
        "servers": [{"url": API_PREFIX}],
        "security": list(SECURED),
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "gridwatch users create / auth/tokens",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "session",
                    "description": "From /auth/login; changes need the X-CSRF-Token header",
                },
            },
            "schemas": COMPONENTS,
            "responses": {f"E{code}": json_reply(ref("Error"), meaning) for code, meaning in ERRORS.items()},
        },
    }


@blueprint.get("/openapi.json")
def openapi_document():
    response = jsonify(build_document(current_app))
    response.mimetype = "application/vnd.oai.openapi+json"
    return response


@blueprint.get("/docs")
def docs_page():
    return Response(DOCS_PAGE, mimetype="text/html")
