"""Inputs declared once: a pydantic model gives both the validation and the OpenAPI entry.

``parse_query(Model)`` reads the request's query string into the model, ``parse_body(Model)``
its JSON or form body; unknown parameters and fields are refused (422), every other error is a
400 naming its field. ``query_parameters(Model)`` and ``body_schema(Model)`` give the same models
to the OpenAPI document (server/openapi.py), so validation and documentation cannot drift.

The field types below are the API's vocabulary: text that is valid UTF-8 without NUL, integers
that are integers (not ``true``, not ``"²"``), codes, times with a UTC offset.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Annotated, Any, TypeVar

from flask import request
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)

from server.errors import InvalidInput, UnknownField
from server.http_input import CODE_PATTERN, body_fields, is_ascii_integer

Model = TypeVar("Model", bound=BaseModel)


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate ("\ud800") from a JSON escape
        raise ValueError("text must be valid Unicode (no lone surrogates)") from error
    return value


def integer_value(value: Any) -> Any:
    """Integers as such, or ASCII digits from a form or query; ``true`` and ``"²"`` are not."""
    if isinstance(value, bool):
        raise ValueError("an integer, not a boolean")
    if isinstance(value, str):
        stripped = value.strip()
        if not (is_ascii_integer(stripped) and len(stripped) < 20):
            raise ValueError("an integer in ASCII digits")
        return int(stripped)
    return value


def _bbox(value: Any) -> tuple[float, float, float, float]:
    """``minlon,minlat,maxlon,maxlat`` in WGS84."""
    parts = value.split(",") if isinstance(value, str) else ()
    if len(parts) != 4:
        raise ValueError("minlon,minlat,maxlon,maxlat")
    try:
        x0, y0, x1, y1 = (float(part) for part in parts)
    except ValueError as error:
        raise ValueError("four numbers: minlon,minlat,maxlon,maxlat") from error
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ValueError("four finite numbers")
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= 90 and -90 <= y1 <= 90):
        raise ValueError("longitudes within ±180, latitudes within ±90")
    if x0 > x1 or y0 > y1:
        raise ValueError("the minimum must not exceed the maximum")
    return x0, y0, x1, y1


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a number, not a boolean")
    return value


def _iso_day(value: Any) -> Any:
    """A day as YYYY-MM-DD only (pydantic would also take 0 as 1970-01-01)."""
    if not (isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value)):
        raise ValueError("a date as YYYY-MM-DD")
    return value


def _flag(value: Any) -> Any:
    """true or false: a JSON boolean, or the words from a form or query (not 0, 1, "yes", "on")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("true or false")


Text = Annotated[str, AfterValidator(_clean_text)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Day = Annotated[date, BeforeValidator(_iso_day)]
Number = Annotated[float, BeforeValidator(_number), Field(allow_inf_nan=False)]
BBox = Annotated[
    tuple[float, float, float, float],
    BeforeValidator(_bbox),
    WithJsonSchema(
        {
            "type": "string",
            "description": "minlon,minlat,maxlon,maxlat (WGS84)",
            "example": "103.3,29.85,103.4,29.95",
        }
    ),
]
Integer = Annotated[int, BeforeValidator(integer_value)]


def _iso_time(value: Any) -> Any:
    """A time as ISO 8601 text only (pydantic would also take -58800 as seconds since 1970)."""
    if not (isinstance(value, str) and re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]", value)):
        raise ValueError("an ISO 8601 time with a UTC offset, e.g. 2026-06-01T08:00:00+08:00")
    return value


Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_time),
    Field(description="ISO 8601 with a UTC offset, e.g. 2026-06-01T08:00:00+08:00"),
]
Code = Annotated[str, Field(pattern=CODE_PATTERN)]
# Up to 20 category (or status) codes, comma-separated.
CODE_LIST_PATTERN = r"^[a-z0-9_]{2,40}(,[a-z0-9_]{2,40}){0,19}$"


def path_code(value: str, *, field: str) -> str:
    """A code from a URL path, checked as a query's would be."""
    if not re.fullmatch(CODE_PATTERN, value):
        raise InvalidInput(f"{field}: {value[:50]!r} is not a valid code", field=field)
    return value


class QueryModel(BaseModel):
    """Base of query-string models: unknown parameters are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


def parse_query(model: type[Model], args: dict[str, str] | None = None) -> Model:
    """The request's query parameters as ``model``; a 400 naming the first bad parameter."""
    if args is None:
        args = {key: request.args.get(key) for key in request.args}
        repeated = next((key for key in request.args if len(request.args.getlist(key)) > 1), None)
        if repeated is not None:
            raise InvalidInput(f"参数 {repeated} 只能给一次 / give {repeated} once", field=repeated)
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
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", ()),
                # An empty value is no value (parse_query): a form that leaves a filter blank.
                **({} if name in schema.get("required", ()) else {"allowEmptyValue": True}),
                "schema": prop,
                "description": description,
            }
        )
    return parameters


def _openapi_schema(node: Any, definitions: dict) -> Any:
    """JSON Schema as OpenAPI 3.0 reads it, all the way down: references inlined, ``anyOf
    [X, null]`` as nullable X, no titles, no ``default: null``."""
    if isinstance(node, list):
        return [_openapi_schema(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        node = {
            **definitions[node["$ref"].rsplit("/", 1)[-1]],
            **{k: v for k, v in node.items() if k != "$ref"},
        }
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**options[0], **rest, **({"nullable": True} if len(options) < len(node["anyOf"]) else {})}
    if "const" in node:  # 3.0 has no const
        node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}
    if "prefixItems" in node:  # nor tuples: items of the tuple's type, within all its items' bounds
        members = node["prefixItems"]
        types = {item.get("type") for item in members}
        items: dict[str, Any] = {"type": types.pop()} if len(types) == 1 else {}
        for bound, pick in (("minimum", min), ("maximum", max)):
            if all(bound in item for item in members):
                items[bound] = pick(item[bound] for item in members)
        node = {**{k: v for k, v in node.items() if k != "prefixItems"}, "items": items}
    converted = {}
    for key, value in node.items():
        if key == "title" or (key == "default" and value is None):
            continue
        # "properties" maps names to schemas: a property may be called "title".
        if key == "properties":
            converted[key] = {name: _openapi_schema(schema, definitions) for name, schema in value.items()}
        elif key == "discriminator":
            converted[key] = {"propertyName": value["propertyName"]}
        else:
            converted[key] = _openapi_schema(value, definitions)
    return converted


class BodyModel(BaseModel):
    """Base of JSON body models: unknown fields are an error (a typo must not lose data)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def parse_body(model: type[Model], *, files: tuple[str, ...] = (), optional: bool = False) -> Model:
    """The request's JSON (or form) body as ``model``; a 400 naming the first bad field, a 422
    for a field the model does not have. Multipart file fields other than ``files`` are unknown
    fields too (a photo under another name must not be dropped). With ``optional``, no body is
    an empty one."""
    if optional and not (request.content_length or request.mimetype):
        data: dict[str, Any] = {}
    else:
        data = body_fields()
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        data = {key: value for key, value in data.items() if value != ""}
        stray = next((name for name in request.files if name not in files), None)
        if stray is not None:
            raise unknown_field(stray)
    elif request.files:
        raise InvalidInput(
            "文件须以 multipart/form-data 上传 / files come in multipart/form-data", field="body"
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _invalid(error) from error


def _invalid(error: ValidationError) -> InvalidInput | UnknownField:
    errors = error.errors()
    # An unknown field first: a misspelt name explains the missing required one.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    field = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] == "extra_forbidden":
        return unknown_field(field)
    return InvalidInput(f"{field} 无效：{first['msg']} / {field}: {first['msg']}", field=field)


def unknown_field(field: str) -> UnknownField:
    return UnknownField(f"没有这个字段或参数：{field} / {field}: unknown field or parameter", field=field)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI 3.0 schema of a body model."""
    schema = model.model_json_schema(by_alias=True)
    return _openapi_schema(schema, schema.pop("$defs", {}))
