"""网格覆盖: every grid coloured by its coverage status (no member, not patrolled, quiet, ok) over
a window of days, the list of gaps to act on, and the holes the last grid import left."""

from __future__ import annotations

from urllib.parse import urlencode

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard import analytics_view as view
from dashboard.i18n import resolve_language, translate
from dashboard.palette import COVERAGE_STATUS_COLOURS
from dashboard.shell import login_prompt
from layers.catalog import LAYERS
from server import clock
from server.analytics.coverage import OK, STATUSES, coverage
from server.auth import current_user
from server.db import get_db

dash.register_page(__name__, path="/analytics/coverage", name="coverage")

DAYS = (7, 14, 30, 90)

STATUS_COLOURS = COVERAGE_STATUS_COLOURS
MAP_SIMPLIFY = 0.0002  # degrees, about 20 m: the county fills the map
GAPS_PER_PAGE = 15
GAP_COLUMNS = ("name", "coverage_status", "member", "households", "days_since_patrol", "patrols", "reports")


def layout(lang: str | None = None, **_query):
    language = resolve_language(lang)
    if current_user() is None:
        return login_prompt(language, "/analytics/coverage")
    return html.Main(
        [
            html.H2(translate("coverage.heading", language)),
            dcc.Store(id="coverage-language", data=language),
            html.Div(
                [
                    html.Label(translate("coverage.days", language), htmlFor="coverage-days"),
                    dcc.Dropdown(
                        id="coverage-days",
                        options=[{"label": str(days), "value": days} for days in DAYS],
                        value=7,
                        clearable=False,
                        className="gw-indicator",
                    ),
                    html.Div(id="coverage-totals", className="gw-coverage-totals"),
                ],
                className="gw-analytics-controls",
            ),
            html.Div(
                [view.choropleth("coverage-map", "coverage-units", canvas=True)],
                className="gw-analytics-map",
            ),
            html.H3(translate("coverage.gaps", language)),
            view.ranked_table("coverage-table", page_size=GAPS_PER_PAGE, language=language),
            html.H3(translate("coverage.partition_gaps", language)),
            html.Ul(id="coverage-partition"),
        ]
    )


# The map reads the coverage API itself (GeoJSON `url`): 2,184 outlines (1 MB) passed through
# a callback cost seconds in Dash's renderer; fetched by the layer they cost a download. It
# starts once the figures are shown: drawing 2,184 grids holds the browser for half a second,
# which would otherwise keep the figures from showing.
def _days(chosen) -> int:
    """The window chosen, one of the page's; else the first (a value the page never sends)."""
    return chosen if chosen in DAYS and not isinstance(chosen, bool) else DAYS[0]


@callback(
    Output("coverage-units", "url"),
    Output("coverage-units", "hideout"),
    Input("coverage-totals", "children"),
    State("coverage-days", "value"),
    State("coverage-language", "data"),
)
def refresh_map(_totals, days, language):
    if current_user() is None:
        raise dash.exceptions.PreventUpdate
    query = urlencode({"days": _days(days), "simplify": MAP_SIMPLIFY})
    return f"/api/v1/analytics/coverage?{query}", {
        "property": "status",
        "breaks": [],
        "colours": [],
        "statusColours": STATUS_COLOURS,
        "statusNames": {status: translate(f"coverage.status.{status}", language) for status in STATUSES},
        "language": language,
    }


@callback(
    Output("coverage-totals", "children"),
    Output("coverage-table", "rowData"),
    Output("coverage-table", "columnDefs"),
    Output("coverage-partition", "children"),
    Input("coverage-days", "value"),
    State("coverage-language", "data"),
)
def refresh(days, language):
    user = current_user()
    if user is None:
        raise dash.exceptions.PreventUpdate
    with get_db().read_connection() as conn:
        body = coverage(
            conn,
            days=_days(days),
            level="grid",
            now=clock.now(),
            members_visible=user.role in LAYERS["grids"].fields["member"].roles,
            simplify=None,  # the figures only: the map has its outlines
        )
    status_names = {status: translate(f"coverage.status.{status}", language) for status in STATUSES}
    totals = [
        html.Span(
            [
                html.I(style={"background": STATUS_COLOURS[status]}),
                f"{status_names[status]} {body['totals'][status]}",
            ],
            className="gw-legend-item",
            id=f"coverage-total-{status}",
        )
        for status in STATUSES
    ]
    return (
        totals,
        _gap_rows(body["features"], status_names, language),
        [
            {
                "headerName": translate(f"column.{key}", language),
                "field": key,
                **({"cellRenderer": "markdown"} if key == "name" else {}),
            }
            for key in GAP_COLUMNS
        ],
        _partition(body["gaps"], language),
    )


def _gap_rows(features, status_names, language):
    order = {status: index for index, status in enumerate(STATUSES)}
    gaps = [f["properties"] for f in features if f["properties"]["status"] != OK]
    gaps.sort(key=lambda p: (order[p["status"]], -(p["days_since_patrol"] or 10_000), p["unit"]))
    rows = []
    for properties in gaps:
        name = properties["name"] if language == "zh" else (properties["name_en"] or properties["name"])
        rows.append(
            {
                "name": f"[{name}](/dashboard/grid/{properties['unit']}?lang={language})",
                "coverage_status": status_names[properties["status"]],
                **{key: properties[key] for key in GAP_COLUMNS[2:]},
            }
        )
    return rows


def _partition(gaps, language):
    if not gaps:
        return [html.Li(translate("coverage.none", language))]
    return [
        html.Li(
            f"{gap['parent_name'] or gap['parent']}: {gap['area_m2']:,} m² "
            f"({gap['lon']:.5f}, {gap['lat']:.5f}) {', '.join(gap['bordering'])}"
        )
        for gap in gaps
    ]
