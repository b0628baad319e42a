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

from dashboard import card, livestats, mapconfig, mapstyle, reference
from dashboard.browser_input import CODE, INCIDENT_ID, NOTE, VIEW, sent
from dashboard.filters import PERIODS, clean_categories
from dashboard.i18n import format_count, resolve_language, translate
from dashboard.shell import login_prompt
from server import clock
from server.auth import current_user
from server.db import get_db
from server.errors import GridwatchError, localized
from server.incidents.workflow import STATUSES

dash.register_page(__name__, path="/map", name="map")

COUNTERS = ("new_today", "open", "overdue", "closed_today")


def _url_filters(category: str | None, status: str | None, period: str | None) -> dict | None:
    """The filters a link to the map carries (livemap.js writes them: period always, category and
    status when chosen); None when it carries none, and the tab's own choice stays."""
    if period is None:
        return None
    return {
        "category": sorted({code for code in (category or "").split(",") if code}),
        "status": sorted(set((status or "").split(",")) & set(STATUSES)),
        "period": period if period in PERIODS else "all",
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
            # Shown while the heatmap is (a callback below follows the layer switches).
            html.Div(
                [
                    html.H5(translate("legend.heatmap", language)),
                    html.Ul(swatches(entries["heatmap"], "hexagon")),
                ],
                id="legend-heatmap",
                hidden="heatmap" not in mapstyle.DEFAULT_SWITCHES,
            ),
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


def layout(
    lang: str | None = None,
    incident: str | None = None,
    category: str | None = None,
    status: str | None = None,
    period: str | None = None,
    **_query,
):
    language = resolve_language(lang)
    user = current_user()
    if user is None:
        return login_prompt(language, "/map")
    # The map itself is started by livemap.js from /dashboard/map/config (dashboard/mapconfig.py).
    from_url = _url_filters(category, status, period)
    with get_db().connection() as conn:
        categories = reference.categories(conn)
        focus = mapconfig.focus(conn, user=user, incident=incident)
        # The counters come with the page (one round trip less before they show numbers), for the
        # categories of the link, else all; refresh_counters redoes them if the tab kept others.
        known = {row["code"] for row in categories}
        counted = clean_categories(from_url["category"] if from_url else [], known)
        numbers = _counter_texts(conn, user=user, categories=counted, language=language)
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
        value=from_url["status"] if from_url else [],
        multi=True,
        placeholder=translate("filter.status", language),
        className="gw-filter",
    )
    counters = html.Div(
        [
            html.Div(
                [html.Div(translate(f"counter.{name}", language)), html.Strong(text, id=f"counter-{name}")],
                className=f"gw-kpi gw-counter-{name}",
            )
            for name, text in zip(COUNTERS, numbers, strict=True)
        ],
        className="gw-counters",
    )
    return html.Main(
        [
            dcc.Store(id="map-url-filters", data=from_url),
            dcc.Store(id="counted-categories", data=counted),
            dcc.Store(id="map-language", data=language),
            dcc.Store(id="map-applied"),
            dcc.Store(id="live-tick", data=0),
            dcc.Store(id="overdue-ids", data=[]),
            dcc.Store(id="map-view"),
            dcc.Store(id="selected-incident", data=focus["id"] if focus else None),
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


# The map follows the shell's filters, the status filter and the layer switches without a server
# round trip (livemap.js changes tile URLs and layer visibility in place).
clientside_callback(
    ClientsideFunction(namespace="gridwatch", function_name="applyMap"),
    Output("map-applied", "data"),
    Input("filter-category", "value"),
    Input("filter-period", "value"),
    Input("map-status", "value"),
    Input("map-layers", "value"),
)

clientside_callback(
    "(layers) => !(layers || []).includes('heatmap')",
    Output("legend-heatmap", "hidden"),
    Input("map-layers", "value"),
)

# A link's filters (?category=&period=) win over those kept for the tab.
clientside_callback(
    ClientsideFunction(namespace="gridwatch", function_name="urlFilters"),
    Output("filter-category", "value"),
    Output("filter-period", "value"),
    Input("map-url-filters", "data"),
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


def _counter_texts(conn, *, user, categories: list[str], language: str) -> list[str]:
    numbers = livestats.counters(conn, user=user, now=clock.now(), categories=categories)
    return [format_count(numbers[name], language) for name in COUNTERS]


@callback(
    *[Output(f"counter-{name}", "children") for name in COUNTERS],
    Input("live-tick", "data"),
    Input("filter-category", "value"),
    State("counted-categories", "data"),
    State("map-language", "data"),
)
def refresh_counters(_tick, category_values, counted, language):
    user = current_user()
    if user is None:
        return [dash.no_update] * len(COUNTERS)
    categories = _known_categories(category_values)
    if ctx.triggered_id is None and categories == counted:
        return [dash.no_update] * len(COUNTERS)  # the page came with these numbers
    with get_db().connection() as conn:
        return _counter_texts(conn, user=user, categories=categories, language=language)


@callback(
    Output("overdue-ids", "data"),
    Input("live-tick", "data"),
    Input("filter-category", "value"),
    Input("map-view", "data"),
)
def refresh_overdue(_tick, category_values, view):
    """The overdue incidents in view, once the map is zoomed in far enough to show points."""
    user = current_user()
    bbox = sent(VIEW, view)
    if user is None or bbox is None:
        return []
    with get_db().connection() as conn:
        return livestats.overdue_ids(
            conn, user=user, now=clock.now(), categories=_known_categories(category_values), bbox=bbox
        )


def _render_card(incident_id, language: str, message=None):
    incident_id = sent(INCIDENT_ID, incident_id)
    language = resolve_language(language)
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
            return html.Div(localized(error.message, language), className="gw-card gw-error")
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
    incident_id, note, department = sent(INCIDENT_ID, incident_id), sent(NOTE, note), sent(CODE, department)
    language = resolve_language(language)
    if (
        not any(isinstance(n, int) and n for n in (clicks if isinstance(clicks, list) else ()))
        or incident_id is None
        or ctx.triggered_id is None
    ):
        return dash.no_update
    user = current_user()
    if user is None:
        return dash.no_update
    action = ctx.triggered_id.get("action") if isinstance(ctx.triggered_id, dict) else None
    if not isinstance(action, str):
        return dash.no_update
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
            incident_id,
            language,
            html.P(localized(error.message, language), className="gw-error", id="card-error"),
        )
    done = html.P(
        f"{translate('card.done', language)}: {translate(f'action.{action}', language)}",
        className="gw-done",
        id="card-done",
    )
    return _render_card(incident_id, language, done)
