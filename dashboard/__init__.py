"""The Dash dashboard, mounted in the Flask server at ``/dashboard/``."""

from __future__ import annotations

from pathlib import Path

from dash import Dash
from flask import Flask

from dashboard import shell


def init_dashboard(server: Flask) -> Dash:
    app = Dash(
        __name__,
        server=server,
        url_base_pathname="/dashboard/",
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
    return app
