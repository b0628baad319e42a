"""Headers every answer carries: no MIME sniffing, no full URLs in referrers to other sites, and
pages that no other site may frame (the dashboard has action buttons: a framed page could be
clicked through, "clickjacking"). A full Content-Security-Policy for scripts is not set yet: Dash
renders an inline script and its components load more (docs/security.md)."""

from __future__ import annotations

from flask import Flask, Response

EVERY_ANSWER = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
PAGES = {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}


def add_headers(response: Response) -> Response:
    for name, value in EVERY_ANSWER.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html":
        for name, value in PAGES.items():
            response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_headers)
