"""One grid: where it is, its member and households, its open cases and recent patrols, and its
indicators and monthly trend against its township's. Reached from every table and map."""

from __future__ import annotations

from datetime import datetime, timedelta

import dash
import dash_leaflet as dl
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html

from dashboard import analytics_view as view
from dashboard.i18n import format_time, resolve_language, translate
from dashboard.shell import login_prompt
from server import clock
from server.auth import current_user
from server.db import get_db
from server.errors import NotFound
from server.grids.service import get_grid
from server.patrols.service import list_patrols

dash.register_page(__name__, path_template="/grid/<code>", name="grid")

FIGURES = (
    "received",
    "due",
    "closed",
    "closure_rate",
    "on_time_rate",
    "backlog",
    "overdue",
    "median_close_h",
)


OUTLINE = {"color": "#1f4e79", "weight": 3, "fillOpacity": 0.08}


def layout(code: str | None = None, lang: str | None = None, **_query):
    language = resolve_language(lang)
    if current_user() is None:
        return login_prompt(language, f"/grid/{code}")
    now = clock.now()
    with get_db().connection() as conn:
        try:
            grid = get_grid(conn, code=code or "", now=now, simplify=0.00005)
        except NotFound:
            return html.Main([html.H2(translate("grid.not_found", language))], id="grid-missing")
        patrols = list_patrols(
            conn,
            grid=code,
            user_id=None,
            started_from=now - timedelta(days=30),
            started_before=None,
            limit=50,
        )
    props = grid
    name = view.local_name(props, language)
    trail = " › ".join(view.local_name(ancestor, language) for ancestor in props["ancestors"])
    facts = [
        (translate("grid.member", language), props["member_name"] or translate("card.no_member", language)),
        (translate("grid.households", language), props.get("households")),
        (translate("grid.open", language), props["kpis"]["open"]),
        (translate("grid.patrols", language), len(patrols)),
    ]
    outline = {"type": "Feature", "geometry": grid["geometry"], "properties": {"label": name}}
    tracks = [
        {
            **patrol,
            "properties": {
                "label": format_time(datetime.fromisoformat(patrol["properties"]["ended_at"]), language)
            },
        }
        for patrol in patrols
    ]
    return html.Main(
        [
            html.P(trail, className="gw-breadcrumb", id="grid-trail"),
            html.H2(f"{name}（{code}）" if language == "zh" else f"{name} ({code})", id="grid-name"),
            dcc.Store(
                id="grid-page", data={"code": code, "language": language, "township": _township(props)}
            ),
            html.Dl(
                [item for label, value in facts for item in (html.Dt(label), html.Dd(value))],
                className="gw-facts",
            ),
            dl.Map(
                [
                    dl.GeoJSON(data=outline, zoomToBounds=True, style=OUTLINE),
                    dl.GeoJSON(
                        data={"type": "FeatureCollection", "features": tracks},
                        style={"color": "#e6550d", "weight": 2},
                    ),
                ],
                center=_centre(grid["geometry"]),
                zoom=14,
                style={"height": "22rem", "background": "#f4f6f8"},
                attributionControl=False,
                id="grid-map",
            ),
            html.Div(id="grid-figures", className="gw-grid-figures"),
            dcc.Graph(id="grid-trend"),
        ],
        id="grid-page-main",
    )


def _selections(categories, period_key, page):
    user = current_user()
    if user is None or not page:
        raise dash.exceptions.PreventUpdate
    now = clock.now()
    with get_db().connection() as conn:
        period = view.bulletin_period(conn, period_key, now)
    own = view.selection_for(user, by="grid", period=period, categories=categories, parent=page["code"])
    theirs = view.selection_for(
        user, by="township", period=period, categories=categories, parent=page["township"]
    )
    return own, theirs, now


PAGE_FILTERS = (
    Input("filter-category", "value"),
    Input("filter-period", "value"),
    State("grid-page", "data"),
)


@callback(Output("grid-figures", "children"), *PAGE_FILTERS)
def refresh_figures(categories, period_key, page):
    own, theirs, _ = _selections(categories, period_key, page)
    language = page["language"]
    with get_db().connection() as conn:
        rows = (
            (translate("grid.heading", language), view.figures(conn, own)["totals"]),
            (translate("column.township", language), view.figures(conn, theirs)["totals"]),
        )
    header = html.Tr([html.Th(""), *[html.Th(translate(f"indicator.{key}", language)) for key in FIGURES]])
    body = [
        html.Tr([html.Th(label), *[html.Td(view.format_figure(key, row[key], language)) for key in FIGURES]])
        for label, row in rows
    ]
    return html.Table(
        [html.Thead(header), html.Tbody(body)], className="gw-queue-table", id="grid-figures-table"
    )


@callback(Output("grid-trend", "figure"), *PAGE_FILTERS)
def refresh_trend(categories, period_key, page):
    own, theirs, now = _selections(categories, period_key, page)
    language = page["language"]
    with get_db().connection() as conn:
        series = (
            (view.trend_of(conn, own, months=12, now=now), translate("grid.heading", language), "solid"),
            (view.trend_of(conn, theirs, months=12, now=now), translate("column.township", language), "dot"),
        )
    figure = go.Figure()
    for points, label, style in series:
        figure.add_scatter(
            x=[point["month"] for point in points],
            y=[point["on_time_rate"] for point in points],
            name=f"{translate('indicator.on_time_rate', language)} · {label}",
            line={"dash": style, "color": "#1a9850"},
            mode="lines+markers",
        )
    figure.update_layout(
        title=translate("grid.vs_township", language),
        yaxis={"tickformat": ".0%", "range": [0, 1.05]},
        xaxis={"type": "category"},
        height=320,
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
    )
    return figure


def _township(props) -> str | None:
    return next((a["code"] for a in props["ancestors"] if a["level"] == "township"), None)


def _centre(geometry) -> list[float]:
    """Where the map opens before it fits the outline: the middle of the outline's box."""
    points = []

    def walk(value):
        if isinstance(value[0], (int, float)):
            points.append(value)
        else:
            for item in value:
                walk(item)

    walk(geometry["coordinates"])
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return [(min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2]
