"""Reading request input: one JSON/form body reader and typed field readers that name the field
in every refusal (``InvalidInput(..., field=name)`` → 400)."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from itertools import accumulate
from typing import Any

from flask import request

from server.errors import InvalidInput

# Deeper JSON is refused before it is parsed: the deepest body (a patrol's track) nests 4 deep,
# and a parser given 100,000 brackets recurses until it fails.
MAX_JSON_DEPTH = 16
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def json_depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings not counted)."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _BRACKETS)
    return max(accumulate(1 if b in b"[{" else -1 for b in brackets), default=0)


def body_fields() -> dict[str, Any]:
    """The request body as a dict: a JSON object, or form fields (urlencoded or multipart)."""
    if request.mimetype == "application/json":
        raw = request.get_data(cache=True)
        if json_depth(raw) > MAX_JSON_DEPTH:
            raise InvalidInput(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", field="body")
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
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:  # a lone surrogate from a JSON escape ("\ud800")
            raise InvalidInput(f"{name} must be valid Unicode (no lone surrogates)", field=name) from error
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


CODE_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"


def codes(data: dict, name: str, *, pattern: str = CODE_PATTERN, options=None) -> tuple[str, ...]:
    """A comma-separated list of codes (categories, statuses...), each checked."""
    return comma_codes(text(data, name, max_length=1000), field=name, pattern=pattern, options=options)


def comma_codes(
    value: str | None, *, field: str, pattern: str = CODE_PATTERN, options: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    if not value:
        return ()
    items = tuple(item.strip() for item in value.split(","))
    for item in items:
        if not re.fullmatch(pattern, item) or (options is not None and item not in options):
            allowed = f": one of {', '.join(options)}" if options is not None else ""
            raise InvalidInput(f"{field}: {item[:50]!r} is not a valid code{allowed}", field=field)
    return items
