"""The Dash dashboard, mounted in the Flask server at ``/dashboard/``."""

from __future__ import annotations

import threading
from pathlib import Path

from dash import Dash
from flask import Flask, redirect, request

from dashboard import browser_input, mapconfig, shell
from server.auth import current_user
from server.errors import InvalidInput, Unauthorized
from server.security_headers import allow_inline_scripts

CALLBACK_PATH = "/dashboard/_dash-update-component"
# What the dashboard answers a caller who has not logged in: the shell (title, navigation, the
# login link), the filters' visibility and the page router (whose pages show them the login
# form). Every other callback reads the county's data.
ANONYMOUS_OUTPUTS = ("..app-title.children.", "filters.className", ".._pages_content.children.")


HOME = "/dashboard/"


def init_dashboard(server: Flask) -> Dash:
    app = Dash(
        __name__,
        server=server,
        url_base_pathname=HOME,
        use_pages=True,
        pages_folder=str(Path(__file__).parent / "pages"),
        serve_locally=True,
        # MapLibre GL JS for the live map, from npm, served by gridwatch itself (server/vendor.py).
        external_scripts=["/vendor/maplibre-gl/maplibre-gl.js"],
        external_stylesheets=["/vendor/maplibre-gl/maplibre-gl.css"],
        title="gridwatch",
        update_title=None,
        # Page layouts query the database; without this Dash calls every one of them on the
        # first request of any route (even /health) to build a validation layout.
        suppress_callback_exceptions=True,
    )
    app.layout = shell.layout
    shell.register_callbacks(app)
    mapconfig.register(server)
    _set_up_before_concurrent_requests(app, server)
    server.before_request(_check_callbacks)
    allow_inline_scripts(server, app.csp_hashes)
    server.add_url_rule("/", "home", _home)
    return app


def _home():
    """The server's bare address, as staff type it, opens the dashboard (``?lang=`` kept)."""
    query = request.query_string.decode()
    return redirect(f"{HOME}?{query}" if query else HOME)


def _check_callbacks() -> None:
    """Before Dash runs a callback: the caller may ask for it (anonymous callers: the shell
    only), and what it sends has the type the page's components send (browser_input.py)."""
    if request.path != CALLBACK_PATH:
        return
    body = request.get_json(silent=True)
    if current_user() is None:
        output = body.get("output") if isinstance(body, dict) else None
        if not (isinstance(output, str) and output.startswith(ANONYMOUS_OUTPUTS)):
            raise Unauthorized("请先登录 / log in first", field=None)
    malformed = browser_input.malformed_callback(body)
    if malformed is not None:
        raise InvalidInput(
            f"回调输入无效：{malformed} / not what the page sends: {malformed}", field=malformed
        )


def _set_up_before_concurrent_requests(app: Dash, server: Flask) -> None:
    """Dash sets up on a worker's first request but marks itself set up before it has registered
    its scripts (plotly/dash#3971): under gunicorn's threads, requests racing the first one got
    500 "not a registered library" for Dash's own bundles and the page stayed blank. Run that
    set-up under a lock, ahead of Dash's own hook, so no request sees it half done."""
    lock = threading.Lock()
    done = threading.Event()

    def set_up() -> None:
        if done.is_set():
            return
        with lock:
            if not done.is_set():
                app._setup_server()
                done.set()

    server.before_request_funcs.setdefault(None, []).insert(0, set_up)
