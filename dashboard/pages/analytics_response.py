"""处置效能: the bulletin's line at the top, a choropleth of one indicator that drills down from
townships to villages to grids, the ranked table with its downloads, the monthly trend against a
year earlier and the spread of time to close per department. Every figure follows the header's
category and period filters (docs/analytics.md)."""

from __future__ import annotations

from urllib.parse import urlencode

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, ctx, dcc, html

from dashboard import analytics_view as view
from dashboard.i18n import resolve_language, translate
from dashboard.shell import login_prompt
from server import clock
from server.analytics.shapes import LEVEL_BELOW, trail, unit_shapes
from server.analytics.trends import close_time_spread
from server.analytics.views import COLUMNS
from server.auth import current_user
from server.db import get_db

dash.register_page(__name__, path="/analytics/response", name="response")

EXPORT_COLUMNS = {column.key: column for column in COLUMNS}

TABLE_COLUMNS = (
    "name", "received", "filed", "due", "closed", "closed_on_time", "closure_rate", "on_time_rate",
    "backlog", "overdue", "median_close_h", "p90_close_h", "rating_mean",
)  # fmt: skip


def layout(lang: str | None = None, unit: str | None = None, **_query):
    language = resolve_language(lang)
    if current_user() is None:
        return login_prompt(language, "/analytics/response")
    return html.Main(
        [
            html.H2(translate("response.heading", language)),
            dcc.Store(id="response-language", data=language),
            dcc.Store(id="response-parent", data=unit),
            html.P(id="response-bulletin", className="gw-bulletin"),
            html.Div(
                [
                    html.Label(translate("analytics.indicator", language), htmlFor="response-indicator"),
                    dcc.Dropdown(
                        id="response-indicator",
                        options=[
                            {"label": translate(f"indicator.{name}", language), "value": name}
                            for name in view.INDICATORS
                        ],
                        value="on_time_rate",
                        clearable=False,
                        className="gw-indicator",
                    ),
                    html.Nav(id="response-breadcrumb", className="gw-breadcrumb"),
                    html.Span(id="response-downloads", className="gw-downloads"),
                ],
                className="gw-analytics-controls",
            ),
            html.Div(
                [view.choropleth("response-map", "response-units"), html.Div(id="response-legend")],
                className="gw-analytics-map",
            ),
            view.ranked_table("response-table"),
            html.Div(
                [dcc.Graph(id="response-trend"), dcc.Graph(id="response-box")],
                className="gw-analytics-charts",
            ),
        ]
    )


@callback(
    Output("response-parent", "data"),
    Input("response-units", "clickData"),
    Input({"type": "response-crumb", "code": dash.ALL}, "n_clicks"),
    State("response-parent", "data"),
    prevent_initial_call=True,
)
def drill(clicked, _crumbs, parent):
    """A click on a unit opens what is inside it; a breadcrumb goes back up."""
    if isinstance(ctx.triggered_id, dict):
        if not ctx.triggered[0]["value"]:
            # New breadcrumb buttons fire this with no click; answering would redraw the page.
            raise dash.exceptions.PreventUpdate
        return ctx.triggered_id["code"] or None
    properties = clicked.get("properties") if isinstance(clicked, dict) else None
    if isinstance(properties, dict) and properties.get("level") in ("township", "village"):
        return properties.get("code")
    return parent


def _context(conn, parent, categories, period_key):
    """The viewer, the period, the drill-down trail and the selection the page shows."""
    user = current_user()
    if user is None:
        raise dash.exceptions.PreventUpdate
    now = clock.now()
    period = view.bulletin_period(conn, period_key, now)
    crumbs = trail(conn, parent)
    level = crumbs[-1]["level"] if crumbs else "county"
    by = LEVEL_BELOW.get(level, "grid")
    selection = view.selection_for(user, by=by, period=period, categories=categories, parent=parent)
    return selection, crumbs, now


# Four callbacks, not one: the browser asks for them together and the workers' threads answer
# them side by side, so the map does not wait for the year of monthly figures.
FILTERS = (
    Input("response-parent", "data"),
    Input("filter-category", "value"),
    Input("filter-period", "value"),
    State("response-language", "data"),
)


@callback(
    Output("response-units", "data"),
    Output("response-units", "hideout"),
    Output("response-legend", "children"),
    Output("response-breadcrumb", "children"),
    Output("response-downloads", "children"),
    Output("response-table", "rowData"),
    Output("response-table", "columnDefs"),
    Input("response-indicator", "value"),
    *FILTERS,
)
def refresh_units(indicator, parent, categories, period_key, language):
    if indicator not in view.INDICATORS:
        indicator = view.INDICATORS[0]
    with get_db().read_connection() as conn:
        selection, crumbs, _ = _context(conn, parent, categories, period_key)
        rows = view.figures(conn, selection)["rows"]
        shapes = unit_shapes(conn, level=selection.by, parent=parent)
    scale = view.colour_scale(indicator, [row[indicator] for row in rows])
    return (
        {"type": "FeatureCollection", "features": _features(rows, shapes, indicator, selection.by, language)},
        scale,
        view.legend(scale, indicator, language),
        _breadcrumb(crumbs, language),
        _downloads(selection.by, parent, selection.period, categories, language),
        _table_rows(rows, selection.by, indicator, language),
        _table_columns(language),
    )


@callback(Output("response-bulletin", "children"), *FILTERS)
def refresh_bulletin(parent, categories, period_key, language):
    with get_db().read_connection() as conn:
        selection, _, _ = _context(conn, parent, categories, period_key)
        totals = view.bulletin_totals(conn, selection)
    return _bulletin(*totals, selection.period, language)


# The charts start once the map has its units: the map is what the page is for, and the charts'
# queries would otherwise share the cores with its query.
@callback(Output("response-trend", "figure"), Input("response-units", "data"), *FILTERS)
def refresh_trend(_units, parent, categories, period_key, language):
    with get_db().read_connection() as conn:
        selection, _, now = _context(conn, parent, categories, period_key)
        series = view.trend_of(conn, selection, months=24, now=now)
    return _trend_figure(series, language)


@callback(Output("response-box", "figure"), Input("response-units", "data"), *FILTERS)
def refresh_spread(_units, parent, categories, period_key, language):
    with get_db().read_connection() as conn:
        selection, _, _ = _context(conn, parent, categories, period_key)
        spread = close_time_spread(conn, selection)
    return _box_figure(spread, language)


def _features(rows, shapes, indicator, by, language) -> list[dict]:
    features = []
    for row in rows:
        shape = shapes.get(row["code"])
        if shape is None:
            continue
        name = row["name"] if language == "zh" else (row.get("name_en") or row["name"])
        label = f"{name}: {view.format_figure(indicator, row[indicator], language)}"
        features.append(
            {
                "type": "Feature",
                "geometry": shape["geometry"],
                "properties": {"code": row["code"], "level": by, "label": label, indicator: row[indicator]},
            }
        )
    return features


def _bulletin(totals, previous, last_year, period, language):
    line = html.Strong(view.bulletin_line(totals, period, language), id="bulletin-line")
    return [line, *view.comparisons(totals, previous, last_year, language, "bulletin")]


def _breadcrumb(crumbs, language):
    parts = [html.Button(translate("analytics.county", language), id={"type": "response-crumb", "code": ""})]
    for crumb in crumbs:
        name = crumb["name_zh"] if language == "zh" else (crumb["name_en"] or crumb["name_zh"])
        parts += [" › ", html.Button(name, id={"type": "response-crumb", "code": crumb["code"]})]
    return parts


def _downloads(by, parent, period, categories, language):
    query = {"by": by, "from": period.start.isoformat(), "to": period.end.isoformat(), "lang": language}
    if parent:
        query["parent"] = parent
    if categories:
        query["category"] = ",".join(categories)
    links = []
    for fmt in ("csv", "xlsx"):
        href = "/api/v1/analytics/response?" + urlencode({**query, "format": fmt})
        links.append(
            html.A(translate(f"analytics.download_{fmt}", language), href=href, id=f"download-{fmt}")
        )
    # The leader report of the area shown (the county, or the township or village drilled into).
    report = {"from": query["from"], "to": query["to"], "lang": language}
    if parent and by in ("village", "grid"):
        report["grid"] = parent
    links.append(
        html.A(
            translate("analytics.download_report", language),
            href="/api/v1/analytics/report?" + urlencode(report),
            id="download-report",
        )
    )
    return links


def _table_rows(rows, by, indicator, language):
    ranked = sorted(rows, key=lambda row: (row[indicator] is None, -(row[indicator] or 0)))
    out = []
    for row in ranked:
        name = row["name"] if language == "zh" else (row.get("name_en") or row["name"])
        if by == "grid":
            name = f"[{name}](/dashboard/grid/{row['code']}?lang={language})"
        out.append(
            {
                "name": name,
                **{
                    key: (
                        round(row[key] * 100, 2)
                        if key.endswith("_rate") and row[key] is not None
                        else row[key]
                    )
                    for key in TABLE_COLUMNS[1:]
                },
            }
        )
    return out


def _as_shown(key, value):
    """Rates as percentages in the table (the exports keep fractions and format them)."""
    return round(value * 100, 2) if key.endswith("_rate") and value is not None else value


def _table_columns(language):
    """Headed as the exports are (server/analytics/views.py ``COLUMNS``)."""
    columns = [
        {
            "headerName": translate("column.name", language),
            "field": "name",
            "cellRenderer": "markdown",
            "pinned": "left",
        }
    ]
    for key in TABLE_COLUMNS[1:]:
        column = EXPORT_COLUMNS[key]
        title = column.zh if language == "zh" else column.en
        title += " (%)" if key.endswith("_rate") else ""
        columns.append({"headerName": title, "field": key, "type": "numericColumn"})
    return columns


def _trend_figure(series, language):
    this_year, year_before = series[12:], series[:12]
    months = [point["month"] for point in this_year]
    figure = go.Figure()
    for points, name, dash_style in (
        (this_year, translate("analytics.this_year", language), "solid"),
        (year_before, translate("analytics.a_year_earlier", language), "dot"),
    ):
        for key, colour in (("on_time_rate", "#1a9850"), ("closure_rate", "#1f4e79")):
            figure.add_scatter(
                x=months,
                y=[point[key] for point in points],
                name=f"{translate(f'indicator.{key}', language)} · {name}",
                line={"color": colour, "dash": dash_style},
                mode="lines+markers",
            )
    figure.update_layout(
        title=translate("analytics.trend", language),
        yaxis={"tickformat": ".0%", "range": [0, 1.05]},
        xaxis={"type": "category"},
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
        legend={"orientation": "h"},
        height=360,
    )
    return figure


def _box_figure(spread, language):
    figure = go.Figure()
    if spread:
        names = [row["name"] if language == "zh" else (row["name_en"] or row["name"]) for row in spread]
        figure.add_box(
            x=names,
            q1=[row["p25"] for row in spread],
            median=[row["p50"] for row in spread],
            q3=[row["p75"] for row in spread],
            lowerfence=[row["p10"] for row in spread],
            upperfence=[row["p90"] for row in spread],
            marker={"color": "#1f4e79"},
            showlegend=False,
        )
    figure.update_layout(
        title=translate("analytics.box", language),
        yaxis={"title": "h", "type": "log"},
        margin={"l": 50, "r": 10, "t": 50, "b": 80},
        height=360,
    )
    return figure
