"""Inputs declared once: a pydantic model gives both the validation and the OpenAPI entry.

``parse_query(Model)`` reads the request's query string into the model (strict: unknown
parameters are refused, each error names its parameter); ``query_parameters(Model)`` lists the
same parameters for the OpenAPI document. Endpoints declared this way cannot drift from their
documentation (the input issue moves the older, hand-declared endpoints here too).
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, ValidationError

from server.errors import InvalidInput
from server.http_input import body_fields

Model = TypeVar("Model", bound=BaseModel)


class QueryModel(BaseModel):
    """Base of query-string models: unknown parameters are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


def parse_query(model: type[Model], args: dict[str, str] | None = None) -> Model:
    """The request's query parameters as ``model``; a 400 naming the first bad parameter."""
    if args is None:
        args = {key: request.args.get(key) for key in request.args}
        repeated = next((key for key in request.args if len(request.args.getlist(key)) > 1), None)
        if repeated is not None:
            raise InvalidInput(f"give {repeated} once", field=repeated)
    # An empty value means "not given" (a form that leaves a filter blank).
    given = {key: value for key, value in args.items() if value != ""}
    try:
        return model.model_validate(given)
    except ValidationError as error:
        raise _invalid(error) from error


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI 3.0 query parameters of ``model``, from its JSON schema."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.get("$defs", {})
    parameters = []
    for name, prop in schema["properties"].items():
        prop = _openapi_schema(prop, definitions)
        description = prop.pop("description", "")
        prop.pop("title", None)
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", ()),
                "schema": prop,
                "description": description,
            }
        )
    return parameters


def _openapi_schema(prop: dict, definitions: dict) -> dict:
    """JSON Schema as OpenAPI 3.0 reads it: references inlined, ``anyOf [X, null]`` as nullable X."""
    if "$ref" in prop:
        prop = {
            **definitions[prop["$ref"].rsplit("/", 1)[-1]],
            **{k: v for k, v in prop.items() if k != "$ref"},
        }
    if "anyOf" in prop:
        options = [option for option in prop["anyOf"] if option.get("type") != "null"]
        rest = {k: v for k, v in prop.items() if k != "anyOf"}
        if len(options) == 1:
            merged = {**_openapi_schema(options[0], definitions), **rest}
            if len(options) < len(prop["anyOf"]):
                merged["nullable"] = True
            if "default" in merged and merged["default"] is None:
                del merged["default"]
            return merged
    return {k: v for k, v in prop.items() if not (k == "default" and v is None)}


class BodyModel(BaseModel):
    """Base of JSON body models: unknown fields are an error (a typo must not lose data)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def parse_body(model: type[Model]) -> Model:
    """The request's JSON (or form) body as ``model``; a 400 naming the first bad field."""
    data = body_fields()
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _invalid(error) from error


def _invalid(error: ValidationError) -> InvalidInput:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    message = "unknown field or parameter" if first["type"] == "extra_forbidden" else first["msg"]
    return InvalidInput(f"{field}: {message}", field=field)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI 3.0 schema of a body model."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})
    schema.pop("title", None)
    schema["properties"] = {
        name: _openapi_schema(prop, definitions) for name, prop in schema["properties"].items()
    }
    return schema
