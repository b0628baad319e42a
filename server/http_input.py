"""Reading request input: one JSON/form body reader and typed field readers that name the field
in every refusal (``InvalidInput(..., field=name)`` → 400)."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from flask import request

from server.errors import InvalidInput


def body_fields() -> dict[str, Any]:
    """The request body as a dict: a JSON object, or form fields (urlencoded or multipart)."""
    if request.mimetype == "application/json":
        raw = request.get_data(cache=True)
        try:
            data = json.loads(raw or b"null", parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidInput(f"malformed JSON: {error}", field="body") from error
        if not isinstance(data, dict):
            raise InvalidInput("the body must be a JSON object", field="body")
        return data
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {key: request.form.get(key) for key in request.form}
    raise InvalidInput(
        "send application/json, application/x-www-form-urlencoded or multipart/form-data",
        field="Content-Type",
    )


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def text(data: dict, name: str, *, required: bool = False, max_length: int = 4000) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    if len(value) > max_length or "\x00" in value:
        raise InvalidInput(f"{name} must be at most {max_length} characters, without NUL", field=name)
    return value


def number(
    data: dict,
    name: str,
    *,
    required: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float | None:
    """A finite number; form fields arrive as strings and are parsed."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{name} is required", field=name)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(f"{name} must be a number", field=name)
    try:
        parsed = float(value)
    except (ValueError, OverflowError) as error:
        raise InvalidInput(f"{name} must be a number", field=name) from error
    if not math.isfinite(parsed):
        raise InvalidInput(f"{name} must be a finite number", field=name)
    if (minimum is not None and parsed < minimum) or (maximum is not None and parsed > maximum):
        raise InvalidInput(f"{name} must be between {minimum} and {maximum}", field=name)
    return parsed


def is_ascii_integer(text: str) -> bool:
    """``text`` is an optional minus and ASCII digits only: str.isdigit() also accepts "²" and
    other digits that int() then refuses (a 500 before)."""
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit()


def integer(
    data: dict, name: str, *, required: bool = False, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{name} is required", field=name)
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be an integer", field=name)
    if isinstance(value, str) and is_ascii_integer(value.strip()) and len(value) < 20:
        value = int(value)
    if not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer", field=name)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InvalidInput(f"{name} must be between {minimum} and {maximum}", field=name)
    return value


# Years a time that windows are computed from may have: year 1 and 9999 parse, and then
# overflow in any arithmetic (a window before or after them).
WINDOW_YEARS = (1900, 2999)


def timestamp(data: dict, name: str, *, years: tuple[int, int] | None = None) -> datetime | None:
    """An ISO 8601 time with a UTC offset; within ``years`` when given. (Times checked later
    against now, such as a due time, are refused there with their reason.)"""
    value = text(data, name, max_length=64)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidInput(f"{name} must be an ISO 8601 time", field=name) from error
    if parsed.tzinfo is None:
        raise InvalidInput(f"{name} needs a UTC offset, e.g. 2026-06-01T08:00:00+08:00", field=name)
    if years and not years[0] <= parsed.year <= years[1]:
        raise InvalidInput(f"{name} must be in the years {years[0]}-{years[1]}", field=name)
    return parsed


def choice(data: dict, name: str, options: tuple[str, ...], *, required: bool = False) -> str | None:
    value = text(data, name, required=required, max_length=100)
    if value is not None and value not in options:
        raise InvalidInput(f"{name} must be one of {', '.join(options)}", field=name)
    return value


def query_args() -> dict[str, str]:
    """The query string as a dict of first values."""
    return request.args.to_dict()


def boolean(data: dict, name: str) -> bool | None:
    value = text(data, name, max_length=5)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise InvalidInput(f"{name} must be true or false", field=name)
    return value.lower() == "true"


def bbox(data: dict, name: str = "bbox") -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` in WGS84."""
    value = text(data, name, max_length=200)
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) != 4:
        raise InvalidInput(f"{name} must be minlon,minlat,maxlon,maxlat", field=name)
    try:
        x0, y0, x1, y1 = (float(part) for part in parts)
    except ValueError as error:
        raise InvalidInput(f"{name} must be four numbers", field=name) from error
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise InvalidInput(f"{name} must be four finite numbers", field=name)
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= 90 and -90 <= y1 <= 90):
        raise InvalidInput(f"{name}: longitudes within ±180, latitudes within ±90", field=name)
    if x0 > x1 or y0 > y1:
        raise InvalidInput(f"{name}: the minimum must not exceed the maximum", field=name)
    return x0, y0, x1, y1


def codes(data: dict, name: str, *, pattern: str = r"^[A-Za-z0-9_-]{1,40}$", options=None) -> tuple[str, ...]:
    """A comma-separated list of codes (categories, statuses...), each checked."""
    value = text(data, name, max_length=1000)
    if value is None:
        return ()
    items = tuple(item.strip() for item in value.split(","))
    for item in items:
        if not re.fullmatch(pattern, item) or (options is not None and item not in options):
            allowed = f": one of {', '.join(options)}" if options is not None else ""
            raise InvalidInput(f"{name}: {item[:50]!r} is not a valid code{allowed}", field=name)
    return items


def code(data: dict, name: str, *, pattern: str = r"^[A-Za-z0-9_-]{1,40}$") -> str | None:
    found = codes(data, name, pattern=pattern)
    if len(found) > 1:
        raise InvalidInput(f"{name} takes one code", field=name)
    return found[0] if found else None


def flag(data: dict, name: str) -> bool | None:
    """A JSON boolean, or 'true'/'false' from a form."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidInput(f"{name} must be true or false", field=name)
