"""One exception tree for the whole server, mapped to HTTP errors in one place.

Every error leaves the API as ``{"error": {"code", "message", "field"}}``, the message in the
caller's language: a message is written "中文 / English" (either order), and the caller gets the
half in the language of its ``Accept-Language`` (Chinese unless it prefers English). A message
with one language only goes as it is.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, has_request_context, jsonify, request
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_accept_header

LANGUAGES = ("zh", "en")
_CHINESE = re.compile(r"[\u4e00-\u9fff]")


def language_of(accept_language: str | None) -> str:
    """The language of an ``Accept-Language`` header: en when preferred to zh, else zh."""
    return parse_accept_header(accept_language, LanguageAccept).best_match(LANGUAGES, default="zh") or "zh"


def caller_language() -> str:
    return language_of(request.headers.get("Accept-Language")) if has_request_context() else "zh"


def localized(message: str, language: str) -> str:
    """The half of a bilingual "中文 / English" message in ``language``."""
    halves = message.split(" / ")
    if len(halves) != 2:
        return message
    chinese = [half for half in halves if _CHINESE.search(half)]
    if len(chinese) != 1:
        return message
    return chinese[0] if language == "zh" else next(half for half in halves if half is not chinese[0])


class GridwatchError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def to_dict(self, language: str | None = None) -> dict[str, Any]:
        message = localized(self.message, language or caller_language())
        body: dict[str, Any] = {"code": self.code, "message": message, "field": self.field}
        body.update(self.extra)
        return {"error": body}


class InvalidInput(GridwatchError):
    status = 400
    code = "invalid_input"


class Unprocessable(GridwatchError):
    """Well-formed input that the domain refuses (e.g. a point outside the county)."""

    status = 422
    code = "unprocessable"


class UnknownField(Unprocessable):
    """A field or parameter the endpoint does not have: refused, never silently dropped."""

    code = "unknown_field"


class Unauthorized(GridwatchError):
    status = 401
    code = "unauthorized"


class Forbidden(GridwatchError):
    status = 403
    code = "forbidden"


class NotFound(GridwatchError):
    status = 404
    code = "not_found"


class Conflict(GridwatchError):
    status = 409
    code = "conflict"


class PayloadTooLarge(GridwatchError):
    status = 413
    code = "payload_too_large"


def body_too_large(limit_bytes: int) -> PayloadTooLarge:
    """The refusal of a request body over the limit (gridwatch's own, and nginx's page for it)."""
    return PayloadTooLarge(
        f"the request body may have at most {limit_bytes // 1024 // 1024} MiB", field="body"
    )


class TooManyRequests(GridwatchError):
    status = 429
    code = "too_many_requests"


class DatabaseUnavailable(GridwatchError):
    status = 503
    code = "database_unavailable"


class ImportFailed(GridwatchError):
    """A file could not be imported; nothing was written."""

    status = 422
    code = "import_failed"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(GridwatchError)
    def _gridwatch_error(error: GridwatchError):
        return jsonify(error.to_dict()), error.status

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        body = {"error": {"code": code, "message": error.description, "field": None}}
        # Keep what the exception says besides its body: Allow on a 405 (RFC 9110), Retry-After.
        headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
        return jsonify(body), error.code or 500, headers

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error")
        body = {"error": {"code": "internal_error", "message": "internal error", "field": None}}
        return jsonify(body), 500
