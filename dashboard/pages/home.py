"""Placeholder overview page: county totals until the dashboard issues fill the shell."""

from __future__ import annotations

import dash
from dash import html

from dashboard.i18n import format_count, resolve_language, translate
from server.db import get_db

dash.register_page(__name__, path="/", name="home")


def layout(lang: str | None = None, **_query):
    language = resolve_language(lang)
    with get_db().connection() as conn:
        totals = conn.execute(
            """SELECT (SELECT count(*) FROM grids WHERE level = 'grid') AS grids,
                      (SELECT count(*) FROM incidents) AS incidents,
                      (SELECT count(*) FROM incidents
                        WHERE status NOT IN ('closed', 'rejected')) AS open"""
        ).fetchone()
    tiles = [
        html.Div(
            [html.Div(translate(f"home.{key}", language)), html.Strong(format_count(totals[key], language))],
            className="gw-kpi",
            id=f"kpi-{key}",
        )
        for key in ("grids", "incidents", "open")
    ]
    return html.Main([html.H2(translate("home.heading", language)), html.Div(tiles)])
