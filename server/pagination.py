"""Opaque, signed page cursors: a client cannot forge or edit one to reach rows by guesswork.

A cursor is the sort key of the last row of a page, signed with the app's secret key (and a
purpose, so an incidents cursor is not accepted for grids). A bad one is a 400 on ``cursor``.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request, url_for
from itsdangerous import BadData, URLSafeSerializer

from server.errors import InvalidInput

CURSOR_DESCRIPTION = "Opaque cursor from a 'next' link; do not build one."


def _serializer(purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"gridwatch.cursor.{purpose}")


def encode_cursor(values: list[Any], *, purpose: str) -> str:
    return _serializer(purpose).dumps(values)


def decode_cursor(token: str | None, *, purpose: str, length: int) -> list[Any] | None:
    if token is None or token == "":
        return None
    try:
        values = _serializer(purpose).loads(token)
    except BadData as error:
        raise InvalidInput("the cursor is not valid: use the 'next' link as given", field="cursor") from error
    if not isinstance(values, list) or len(values) != length:
        raise InvalidInput("the cursor is not valid: use the 'next' link as given", field="cursor")
    return values


def page_links(endpoint: str, next_cursor: str | None, **view_args: Any) -> list[dict]:
    """OGC API – Features style links: 'self', and 'next' while more rows follow."""
    args = {key: value for key, value in request.args.items() if key != "cursor"}
    links = [
        {
            "rel": "self",
            "type": "application/geo+json",
            "href": url_for(endpoint, _external=True, **view_args, **request.args.to_dict()),
        }
    ]
    if next_cursor is not None:
        links.append(
            {
                "rel": "next",
                "type": "application/geo+json",
                "href": url_for(endpoint, _external=True, **view_args, **args, cursor=next_cursor),
            }
        )
    return links
