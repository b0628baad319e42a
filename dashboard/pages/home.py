"""概况: the county at a glance for a leader. The county's size, this month's bulletin line
against last month and a year earlier, the monthly trend, the five slowest and the five best
townships, and the coverage status counts; each links to its page."""

from __future__ import annotations

import dash
import plotly.graph_objects as go
from dash import Input, Output, callback, dcc, html

from dashboard import analytics_view as view
from dashboard.i18n import format_count, resolve_language, translate
from layers.catalog import LAYERS
from server import clock
from server.analytics.coverage import STATUSES, coverage
from server.auth import current_user
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
    glance = []
    if current_user() is not None:
        # Filled by the callbacks below, side by side on the workers' threads.
        glance = [
            dcc.Store(id="home-language", data=language),
            html.P(id="home-bulletin-line", className="gw-bulletin"),
            html.Div(
                [html.Div(id="home-townships", className="gw-glance-pair"), html.Div(id="home-coverage-box")],
                className="gw-glance",
            ),
            dcc.Graph(id="home-trend", config={"displayModeBar": False}),
        ]
    return html.Main([html.H2(translate("home.heading", language)), html.Div(tiles), *glance])


def _this_month(conn):
    user = current_user()
    if user is None:
        raise dash.exceptions.PreventUpdate
    now = clock.now()
    period = view.bulletin_period(conn, "month", now)
    return user, view.selection_for(user, by="township", period=period, categories=(), parent=None), now


@callback(Output("home-bulletin-line", "children"), Input("home-language", "data"))
def bulletin(language):
    with get_db().connection() as conn:
        _, selection, _ = _this_month(conn)
        totals, previous, last_year = view.bulletin_totals(conn, selection)
    line = view.bulletin_line(totals, selection.period, language)
    compared = view.comparisons(totals, previous, last_year, language, "home")
    link = f"/dashboard/analytics/response?lang={language}"
    return [dcc.Link(html.Strong(line), href=link, id="home-bulletin"), *compared]


@callback(Output("home-townships", "children"), Input("home-language", "data"))
def townships(language):
    with get_db().connection() as conn:
        _, selection, _ = _this_month(conn)
        rows = view.figures(conn, selection)["rows"]
    ranked = sorted((r for r in rows if r["on_time_rate"] is not None), key=lambda r: r["on_time_rate"])
    return [
        _townships("analytics.slowest", ranked[:5], "home-slowest", language),
        _townships("analytics.best", ranked[::-1][:5], "home-best", language),
    ]


@callback(Output("home-coverage-box", "children"), Input("home-language", "data"))
def coverage_counts(language):
    with get_db().connection() as conn:
        user, _, now = _this_month(conn)
        members_visible = user.role in LAYERS["grids"].fields["member"].roles
        statuses = coverage(
            conn, days=7, level="grid", now=now, members_visible=members_visible, simplify=None
        )["totals"]
    return _coverage(statuses, language)


@callback(Output("home-trend", "figure"), Input("home-language", "data"))
def trend(language):
    with get_db().connection() as conn:
        _, selection, now = _this_month(conn)
        series = view.trend_of(conn, selection, months=12, now=now)
    return _trend(series, language)


def _townships(title: str, rows: list[dict], element_id: str, language: str) -> html.Section:
    items = [
        html.Li(
            dcc.Link(
                f"{view.local_name(row, language, zh='name')} "
                f"{view.format_figure('on_time_rate', row['on_time_rate'], language)}",
                href=f"/dashboard/analytics/response?unit={row['code']}&lang={language}",
            )
        )
        for row in rows
    ]
    return html.Section([html.H3(translate(title, language)), html.Ol(items)], id=element_id)


def _coverage(statuses: dict, language: str) -> html.Section:
    items = [
        html.Li(f"{translate(f'coverage.status.{status}', language)}: {statuses[status]:,}")
        for status in STATUSES
    ]
    link = dcc.Link(
        translate("coverage.heading", language), href=f"/dashboard/analytics/coverage?lang={language}"
    )
    return html.Section([html.H3(link), html.Ul(items)], id="home-coverage")


def _trend(series: list[dict], language: str) -> go.Figure:
    months = [point["month"] for point in series]
    figure = go.Figure()
    figure.add_bar(
        x=months,
        y=[point["received"] for point in series],
        name=translate("indicator.received", language),
        marker={"color": "#9ecae1"},
        yaxis="y2",
    )
    for key, colour in (("on_time_rate", "#1a9850"), ("closure_rate", "#1f4e79")):
        figure.add_scatter(
            x=months,
            y=[point[key] for point in series],
            name=translate(f"indicator.{key}", language),
            line={"color": colour},
            mode="lines+markers",
        )
    figure.update_layout(
        yaxis={"tickformat": ".0%", "range": [0, 1.05]},
        yaxis2={"overlaying": "y", "side": "right", "showgrid": False},
        xaxis={"type": "category"},
        legend={"orientation": "h"},
        margin={"l": 40, "r": 40, "t": 20, "b": 40},
        height=320,
    )
    return figure
