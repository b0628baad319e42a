"""Headers every answer carries: no MIME sniffing, no full URLs in referrers to other sites, and
for pages a Content-Security-Policy: scripts only from gridwatch itself and the inline scripts
it knows by hash (Dash's renderer and clientside callbacks, the API docs page), connections only
to itself and its change feed, and no framing by other sites (the dashboard has action buttons:
a framed page could be clicked through, "clickjacking"). docs/security.md lists each allowance."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request

from server.feed.urls import feed_url

EVERY_ANSWER = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
INLINE_SCRIPTS = "gridwatch.inline_script_hashes"


def script_hash(script: str) -> str:
    """The CSP source that allows exactly this inline script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def allow_inline_scripts(app: Flask, hashes: Callable[[], Iterable[str]]) -> None:
    """Let pages run the inline scripts whose hashes ``hashes()`` gives (asked per page: Dash
    knows its clientside callbacks only once it has set itself up)."""
    app.extensions.setdefault(INLINE_SCRIPTS, []).append(hashes)


def content_security_policy() -> str:
    settings = current_app.extensions["gridwatch.settings"]
    feed = urlsplit(feed_url(settings, host=request.host, scheme=request.scheme))
    feed_origin = f"{feed.scheme}://{feed.netloc}"
    hashes = sorted({h for source in current_app.extensions.get(INLINE_SCRIPTS, []) for h in source()})
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *hashes],
        # React, Leaflet and MapLibre position and colour elements with style attributes.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        # The change feed answers on its own port (a different origin to the browser).
        "connect-src": ["'self'", feed_origin, feed_origin.replace("http", "ws", 1)],
        # MapLibre starts its workers from blob: URLs; the feed's SharedWorker is a file of ours.
        "worker-src": ["'self'", "blob:"],
        "child-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def add_headers(response: Response) -> Response:
    for name, value in EVERY_ANSWER.items():
        response.headers.setdefault(name, value)
    # Pages, not downloads: the leader report is a file that opens from disk with its own scripts.
    if response.mimetype == "text/html" and "attachment" not in response.headers.get(
        "Content-Disposition", ""
    ):
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_headers)
