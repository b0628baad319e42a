"""One exception tree for the whole server, mapped to HTTP errors in one place.

Every error leaves the API as ``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException


class GridwatchError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        body.update(self.extra)
        return {"error": body}


class InvalidInput(GridwatchError):
    status = 400
    code = "invalid_input"


class Unprocessable(GridwatchError):
    """Well-formed input that the domain refuses (e.g. a point outside the county)."""

    status = 422
    code = "unprocessable"


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
        return jsonify(body), error.code or 500

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error")
        body = {"error": {"code": "internal_error", "message": "internal error", "field": None}}
        return jsonify(body), 500
