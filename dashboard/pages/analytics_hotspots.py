"""热点分析: where incidents cluster beyond chance (Gi*, Local Moran) or how the clusters change
month by month (emerging hotspots), on grids, villages, townships or H3 cells; the map reads the
hotspot API itself, the table lists the hottest units, and a paragraph says what the colours
mean (docs/analytics.md, "Hotspots")."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from urllib.parse import urlencode

import dash
from dash import Input, Output, State, callback, dcc, html
from flask import current_app

from dashboard import analytics_view as view
from dashboard.i18n import resolve_language, translate
from dashboard.palette import HOTSPOT_CLASS_COLOURS
from dashboard.reference import categories, options
from dashboard.shell import login_prompt
from server import clock
from server.analytics import emerging, hotspots
from server.analytics.period import Period, add_months, calendar_zone
from server.analytics.spot_views import ROLES
from server.auth import current_user
from server.db import get_db

dash.register_page(__name__, path="/analytics/hotspots", name="hotspots")

CLASS_COLOURS = HOTSPOT_CLASS_COLOURS
KINDS = (
    "new",
    "consecutive",
    "intensifying",
    "persistent",
    "diminishing",
    "sporadic",
    "oscillating",
    "historical",
)
HOT_SHADES = ("#fee0d2", "#fcbba1", "#a50f15", "#de2d26", "#fb6a4a", "#fc9272", "#f4a582", "#fdd0a2")
COLD_SHADES = ("#deebf7", "#c6dbef", "#08519c", "#3182bd", "#6baed6", "#9ecae1", "#92c5de", "#d0d1e6")
PATTERN_COLOURS = {
    **{f"{kind}_hot": colour for kind, colour in zip(KINDS, HOT_SHADES, strict=True)},
    **{f"{kind}_cold": colour for kind, colour in zip(KINDS, COLD_SHADES, strict=True)},
    "no_pattern": "#f7f7f7",
}
PERIODS = ("last_365", "summer_straw", "autumn_straw", "flood")
TABLE_ROWS = 10
# Each control's choices, the first the default; a link may set any of them (?unit=h3&...).
CHOICES = {
    "method": ("gi_star", "local_moran", "emerging"),
    "unit": ("grid", "village", "township", "h3"),
    "period": PERIODS,
    "measure": ("count", "per_100_households"),
}


def layout(lang: str | None = None, category: str | None = None, **query):
    language = resolve_language(lang)
    user = current_user()
    if user is None:
        return login_prompt(language, "/analytics/hotspots")
    if user.role not in ROLES:
        return html.Main(html.P(translate("hotspots.not_for_role", language), id="hotspots-not-allowed"))
    with get_db().read_connection() as conn:
        category_options = options(categories(conn), language)
    chosen = {
        name: query.get(name) if query.get(name) in values else values[0] for name, values in CHOICES.items()
    }
    if category not in {option["value"] for option in category_options}:
        category = None

    def control(name: str, component) -> html.Div:
        return html.Div(
            [html.Label(translate(f"hotspots.{name}", language), htmlFor=component.id), component]
        )

    def choice(name: str) -> dcc.Dropdown:
        return dcc.Dropdown(
            id=f"hotspots-{name}",
            options=[
                {"label": translate(f"hotspots.{name}.{v}", language), "value": v} for v in CHOICES[name]
            ],
            value=chosen[name],
            clearable=False,
            className="gw-indicator",
        )

    return html.Main(
        [
            html.H2(translate("hotspots.heading", language)),
            dcc.Store(id="hotspots-language", data=language),
            html.Div(
                [
                    *(control(name, choice(name)) for name in CHOICES),
                    control(
                        "category",
                        dcc.Dropdown(
                            id="hotspots-category",
                            options=category_options,
                            value=category,
                            className="gw-indicator",
                        ),
                    ),
                ],
                className="gw-analytics-controls gw-hotspot-controls",
            ),
            html.Div(
                [
                    html.Div(
                        [view.choropleth("hotspots-map", "hotspots-units", canvas=True)],
                        className="gw-analytics-map",
                    ),
                    html.Aside(id="hotspots-explanation", className="gw-hotspot-explanation"),
                ],
                className="gw-hotspot-body",
            ),
            html.H3(translate("hotspots.top", language)),
            view.ranked_table("hotspots-table"),
        ]
    )


def season(preset: str, today: date) -> tuple[date, date]:
    """The period of a preset: the last 365 days, or the latest summer straw-burning season
    (May–June, after the wheat and rapeseed harvest), autumn one (September–November, after
    the rice harvest) or flood season (June–September) that has begun, up to today."""
    tomorrow = today + timedelta(days=1)
    if preset == "last_365":
        return today - timedelta(days=364), tomorrow
    first_month, months = {"summer_straw": (5, 2), "autumn_straw": (9, 3), "flood": (6, 4)}[preset]
    start = date(today.year, first_month, 1)
    if start > today:
        start = date(today.year - 1, first_month, 1)
    return start, min(add_months(start, months), tomorrow)


@callback(
    Output("hotspots-units", "url"),
    Output("hotspots-units", "hideout"),
    Output("hotspots-explanation", "children"),
    Output("hotspots-table", "rowData"),
    Output("hotspots-table", "columnDefs"),
    Input("hotspots-method", "value"),
    Input("hotspots-unit", "value"),
    Input("hotspots-period", "value"),
    Input("hotspots-measure", "value"),
    Input("hotspots-category", "value"),
    State("hotspots-language", "data"),
)
def refresh(method, unit, preset, measure, category, language):
    method, unit, preset, measure = (
        given if given in CHOICES[name] else CHOICES[name][0]
        for name, given in zip(
            ("method", "unit", "period", "measure"), (method, unit, preset, measure), strict=True
        )
    )
    category = category if isinstance(category, str) else None
    user = current_user()
    if user is None or user.role not in ROLES:
        raise dash.exceptions.PreventUpdate
    now = clock.now()
    if unit == "h3" or method == "emerging":
        measure = "count"  # H3 cells have no households; emerging counts incidents
    with get_db().read_connection() as conn:
        zone = calendar_zone(conn)
        start, end = season(preset or "last_365", now.astimezone(zone).date())
        query = {
            "unit": unit,
            **({"resolution": 8} if unit == "h3" else {}),
            **({"category": category} if category else {}),
        }
        base = hotspots.HotspotRequest(
            unit=unit,
            resolution=8 if unit == "h3" else None,
            period=Period.of(start=start, end=end, as_of=now, zone=zone),
            category=(category,) if category else (),
            measure=measure,
            method="gi_star" if method == "emerging" else method,
        )
        cache = current_app.extensions.setdefault("gridwatch.hotspot_cache", hotspots.HotspotCache())
        if method == "emerging":
            this_month = now.astimezone(zone).date().replace(day=1)
            months = Period.of(start=add_months(this_month, -24), end=this_month, as_of=now, zone=zone)
            base = replace(base, period=months)
            body = emerging.emerging_hotspots(conn, emerging.EmergingRequest(base=base), cache=cache, now=now)
            path = "/api/v1/analytics/emerging-hotspots?" + urlencode(
                {**query, "from": base.period.start.isoformat(), "to": base.period.end.isoformat()}
            )
        else:
            body = hotspots.hotspots(conn, base, cache=cache, now=now)
            path = "/api/v1/analytics/hotspots?" + urlencode(
                {
                    **query,
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "measure": measure,
                    "method": method,
                }
            )
    answer = json.loads(body)
    shown = "pattern" if method == "emerging" else "class"
    colours = PATTERN_COLOURS if method == "emerging" else CLASS_COLOURS
    names = {key: translate(f"hotspots.{shown}.{key}", language) for key in colours}
    hideout = {"property": shown, "breaks": [], "colours": [], "statusColours": colours,
               "statusProperty": shown, "statusNames": names, "language": language}  # fmt: skip
    return (
        path,
        hideout,
        _explanation(method, colours, names, language),
        *_table(answer, method, names, unit, language),
    )


def _explanation(method, colours, names, language):
    shown = [key for key in colours if key != "none" and key != "no_pattern"]
    if method == "gi_star":
        shown = [key for key in shown if key.startswith(("hot", "cold"))]
    elif method == "local_moran":
        shown = ["HH", "HL", "LH", "LL"]
    return [
        html.P(translate(f"hotspots.explain.{method}", language)),
        html.Div(
            [
                html.Span(
                    [html.I(style={"background": colours[key]}), names[key]], className="gw-legend-item"
                )
                for key in shown
            ],
            className="gw-hotspot-legend",
        ),
    ]


def _table(answer, method, names, unit, language):
    features = [f["properties"] for f in answer["features"]]
    if method == "emerging":
        hot = [p for p in features if p["pattern"].endswith("_hot")]
        hot.sort(key=lambda p: -p["trend_z"])
        label = lambda p: names[p["pattern"]]  # noqa: E731
    else:
        hot = [p for p in features if p["class"].startswith("hot") or p["class"] == "HH"]
        hot.sort(key=lambda p: -(p["gi_z"] if p["gi_z"] is not None else p["local_i"] or 0))
        label = lambda p: names[p["class"]]  # noqa: E731
    rows = []
    for p in hot[:TABLE_ROWS]:
        name = p["name"] or p["unit"]
        linked = f"[{name}](/dashboard/grid/{p['unit']}?lang={language})" if unit != "h3" else name
        rows.append({"name": linked, "spot": label(p), "count": p["count"]})
    columns = [
        {"headerName": translate("column.name", language), "field": "name", "cellRenderer": "markdown"},
        {"headerName": translate("hotspots.column.spot", language), "field": "spot"},
        {"headerName": translate("hotspots.column.count", language), "field": "count"},
    ]
    return rows, columns
