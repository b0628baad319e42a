"""The Dash dashboard, mounted in the Flask server at ``/dashboard/``."""

from __future__ import annotations

from pathlib import Path

from dash import Dash, dcc, html, page_container
from flask import Flask

from dashboard.i18n import translate


def init_dashboard(server: Flask) -> Dash:
    app = Dash(
        __name__,
        server=server,
        url_base_pathname="/dashboard/",
        use_pages=True,
        pages_folder=str(Path(__file__).parent / "pages"),
        serve_locally=True,
        title="gridwatch",
        update_title=None,
        # Page layouts query the database; without this Dash calls every one of them on the
        # first request of any route (even /health) to build a validation layout.
        suppress_callback_exceptions=True,
    )
    app.layout = html.Div(
        [
            dcc.Location(id="url"),
            html.Header(html.H1(translate("app.title", "zh")), className="gw-header"),
            page_container,
        ]
    )
    return app
