"""The live map (the grid centre's wall screen): gridwatch's own vector tiles drawn by MapLibre
GL JS (``assets/livemap.js``), layer switches, the status filter (category and period come from
the shell), four live counters, and the card of the incident clicked.

Live updates: livemap.js listens to ``/api/v1/events`` and refetches only the tiles an event
touched, then bumps ``live-tick`` so the counters (and the open card, when it is the changed
incident) are read again.
"""

from __future__ import annotations

import dash
from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, html
from flask import current_app

from dashboard import card, livestats, mapstyle, reference
from dashboard.filters import PERIODS, clean_categories, resolve_period
from dashboard.i18n import format_count, resolve_language, translate
from dashboard.shell import login_prompt
from server import clock
from server.auth import current_user
from server.db import get_db
from server.errors import GridwatchError
from server.incidents.workflow import STATUSES

dash.register_page(__name__, path="/map", name="map")

COUNTERS = ("new_today", "open", "overdue", "closed_today")
# Where the map opens when there are no grids yet (Hongya, the demo county).
FALLBACK_BOUNDS = [[102.9, 29.5], [103.6, 30.0]]
TOOLTIP_KEYS = ("open", "overdue", "member", "no_member", "incidents", "age", "hours")


def _county(conn) -> tuple[list, tuple[float, float]]:
    row = conn.execute(
        """SELECT ST_XMin(e) AS w, ST_YMin(e) AS s, ST_XMax(e) AS e, ST_YMax(e) AS n
             FROM (SELECT ST_Extent(geom) AS e FROM grids WHERE level = 'county') AS county"""
    ).fetchone()
    if row["w"] is None:
        bounds = FALLBACK_BOUNDS
    else:
        bounds = [[row["w"], row["s"]], [row["e"], row["n"]]]
    centre = ((bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2)
    return bounds, centre


def _focus(conn, user, incident: str | None) -> dict | None:
    """The incident a link asks to open (``?incident=ID``), if the viewer may see it."""
    if not incident or not incident.isdigit() or len(incident) > 18:
        return None
    try:
        found = card.load(conn, user=user, incident_id=int(incident), now=clock.now())
    except GridwatchError:
        return None
    return {"id": found["id"], "lon": found["lon"], "lat": found["lat"]}


def _map_config(conn, *, language: str, user, incident: str | None, categories: list[dict]) -> dict:
    settings = current_app.extensions["gridwatch.settings"]
    basemap = (
        mapstyle.Basemap(settings.basemap_url, settings.basemap_attribution, settings.basemap_crs)
        if settings.basemap_url
        else None
    )
    bounds, centre = _county(conn)
    now = clock.now()
    periods = {key: period.tile_param() for key in PERIODS if (period := resolve_period(key, now))}
    return {
        "style": mapstyle.build_style(language=language, basemap=basemap, centre=centre),
        "shift": mapstyle.gcj02_shift(*centre) if basemap and basemap.crs == "gcj02" else None,
        "bounds": bounds,
        "periods": periods,
        "switches": mapstyle.SWITCHES,
        "labels": {key: translate(f"tooltip.{key}", language) for key in TOOLTIP_KEYS},
        "categoryLabels": {row["code"]: reference.name_in(row, language) for row in categories},
        "statusLabels": {status: translate(f"status.{status}", language) for status in STATUSES},
        "focus": _focus(conn, user, incident),
    }


def _legend(language: str, categories: list[dict]):
    entries = mapstyle.legend(language, categories)

    def swatches(items, shape):
        return [
            html.Li(
                [
                    html.Span(className=f"gw-swatch gw-{shape}", style={"background": item["colour"]}),
                    item["label"],
                ]
            )
            for item in items
        ]

    return html.Details(
        [
            html.Summary(translate("legend.heading", language)),
            html.H5(translate("layer.grids", language)),
            html.Ul(swatches(entries["grids"], "square")),
            html.H5(translate("layer.incidents", language)),
            html.Ul(
                [
                    *swatches(entries["categories"], "dot"),
                    html.Li(
                        [html.Span(className="gw-swatch gw-cluster"), translate("legend.cluster", language)]
                    ),
                    html.Li(
                        [
                            html.Span(className="gw-swatch gw-overdue-ring"),
                            translate("legend.overdue_point", language),
                        ]
                    ),
                ]
            ),
        ],
        open=True,
        className="gw-legend",
        id="map-legend",
    )


def layout(lang: str | None = None, incident: str | None = None, **_query):
    language = resolve_language(lang)
    user = current_user()
    if user is None:
        return login_prompt(language, "/map")
    with get_db().connection() as conn:
        categories = reference.categories(conn)
        config = _map_config(conn, language=language, user=user, incident=incident, categories=categories)
    switches = dcc.Checklist(
        id="map-layers",
        options=[
            {"label": translate(f"layer.{name}", language), "value": name} for name in mapstyle.SWITCHES
        ],
        value=list(mapstyle.DEFAULT_SWITCHES),
        className="gw-switches",
        inline=True,
    )
    statuses = dcc.Dropdown(
        id="map-status",
        options=[{"label": translate(f"status.{status}", language), "value": status} for status in STATUSES],
        multi=True,
        placeholder=translate("filter.status", language),
        className="gw-filter",
    )
    counters = html.Div(
        [
            html.Div(
                [html.Div(translate(f"counter.{name}", language)), html.Strong("…", id=f"counter-{name}")],
                className=f"gw-kpi gw-counter-{name}",
            )
            for name in COUNTERS
        ],
        className="gw-counters",
    )
    return html.Main(
        [
            dcc.Store(id="map-config", data=config),
            dcc.Store(id="map-language", data=language),
            dcc.Store(id="map-applied"),
            dcc.Store(id="live-tick", data=0),
            dcc.Store(id="overdue-ids", data=[]),
            dcc.Store(id="map-view"),
            dcc.Store(id="selected-incident", data=config["focus"]["id"] if config["focus"] else None),
            dcc.Store(id="card-refresh", data=0),
            html.Div(
                [counters, html.Div([switches, statuses], className="gw-map-tools")], className="gw-map-bar"
            ),
            html.Div(
                [
                    html.Div(id="live-map", className="gw-map"),
                    _legend(language, categories),
                    html.Aside(id="incident-card", className="gw-card-panel"),
                ],
                className="gw-map-area",
            ),
        ],
        className="gw-map-page",
    )


# The map follows its config, the shell's filters, the status filter and the layer switches
# without a server round trip (livemap.js changes tile URLs and layer visibility in place).
clientside_callback(
    ClientsideFunction(namespace="gridwatch", function_name="applyMap"),
    Output("map-applied", "data"),
    Input("map-config", "data"),
    Input("filter-category", "value"),
    Input("filter-period", "value"),
    Input("map-status", "value"),
    Input("map-layers", "value"),
)

clientside_callback(
    ClientsideFunction(namespace="gridwatch", function_name="followSelection"),
    Output("map-applied", "data", allow_duplicate=True),
    Input("selected-incident", "data"),
    prevent_initial_call="initial_duplicate",
)

clientside_callback(
    ClientsideFunction(namespace="gridwatch", function_name="markOverdue"),
    Output("map-applied", "data", allow_duplicate=True),
    Input("overdue-ids", "data"),
    prevent_initial_call=True,
)


def _known_categories(values) -> list[str]:
    with get_db().connection() as conn:
        known = {row["code"] for row in reference.categories(conn)}
    return clean_categories(values, known)


@callback(
    *[Output(f"counter-{name}", "children") for name in COUNTERS],
    Input("live-tick", "data"),
    Input("filter-category", "value"),
    State("map-language", "data"),
)
def refresh_counters(_tick, category_values, language):
    user = current_user()
    if user is None:
        return [dash.no_update] * len(COUNTERS)
    with get_db().connection() as conn:
        numbers = livestats.counters(
            conn, user=user, now=clock.now(), categories=_known_categories(category_values)
        )
    return [format_count(numbers[name], language) for name in COUNTERS]


@callback(
    Output("overdue-ids", "data"),
    Input("live-tick", "data"),
    Input("filter-category", "value"),
    Input("map-view", "data"),
)
def refresh_overdue(_tick, category_values, view):
    """The overdue incidents in view, once the map is zoomed in far enough to show points."""
    user = current_user()
    if user is None or not view:
        return []
    bbox = tuple(float(value) for value in view)
    with get_db().connection() as conn:
        return livestats.overdue_ids(
            conn, user=user, now=clock.now(), categories=_known_categories(category_values), bbox=bbox
        )


def _render_card(incident_id: int | None, language: str, message=None):
    if incident_id is None:
        return None
    user = current_user()
    if user is None:
        return None
    now = clock.now()
    with get_db().connection() as conn:
        try:
            incident = card.load(conn, user=user, incident_id=incident_id, now=now)
        except GridwatchError as error:
            return html.Div(error.message, className="gw-card gw-error")
        departments = reference.departments(conn)
    rendered = card.render(incident, language=language, now=now, departments=departments)
    if message is not None:
        rendered.children.insert(1, message)
    return rendered


@callback(
    Output("incident-card", "children"),
    Input("selected-incident", "data"),
    Input("card-refresh", "data"),
    State("map-language", "data"),
)
def show_card(incident_id, _refresh, language):
    return _render_card(incident_id, language)


@callback(
    Output("selected-incident", "data", allow_duplicate=True),
    Input("card-close", "n_clicks"),
    prevent_initial_call=True,
)
def close_card(clicks):
    return None if clicks else dash.no_update


@callback(
    Output("incident-card", "children", allow_duplicate=True),
    Input({"type": "card-action", "action": ALL}, "n_clicks"),
    State("selected-incident", "data"),
    State("card-note", "value"),
    State("card-department", "value"),
    State("card-new-due", "value"),
    State("map-language", "data"),
    prevent_initial_call=True,
)
def take_action(clicks, incident_id, note, department, new_due, language):
    if not any(clicks) or incident_id is None or ctx.triggered_id is None:
        return dash.no_update
    user = current_user()
    if user is None:
        return dash.no_update
    action = ctx.triggered_id["action"]
    try:
        with get_db().connection() as conn:
            card.act(
                conn,
                user=user,
                incident_id=incident_id,
                action=action,
                now=clock.now(),
                note=note,
                department=department,
                new_due=new_due,
            )
    except GridwatchError as error:
        return _render_card(
            incident_id, language, html.P(error.message, className="gw-error", id="card-error")
        )
    done = html.P(
        f"{translate('card.done', language)}: {translate(f'action.{action}', language)}",
        className="gw-done",
        id="card-done",
    )
    return _render_card(incident_id, language, done)
