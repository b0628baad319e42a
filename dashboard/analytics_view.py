"""What the leaders' pages share: the period the header's filter means for a bulletin, the
viewer's selection, the choropleth map (dash-leaflet, no basemap: the grids are the map) and
number formats."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import date, datetime, timedelta

import dash_ag_grid as dag
import dash_leaflet as dl
from dash import html
from flask import current_app

from dashboard.filters import resolve_period
from dashboard.i18n import LOCAL_TIME, translate
from server.analytics.period import Period, add_months, calendar_zone
from server.analytics.response import Selection, response_rows
from server.analytics.trends import monthly
from server.auth.scope import scope_of

RATE_INDICATORS = ("on_time_rate", "closure_rate")
INDICATORS = ("on_time_rate", "closure_rate", "received", "backlog", "overdue", "median_close_h")
# Rates from red (low) to green; counts of trouble from pale to dark red.
GOOD_HIGH = ("#d73027", "#fc8d59", "#fee08b", "#d9ef8b", "#91cf60", "#1a9850")
BAD_HIGH = ("#fff5eb", "#fdd0a2", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603")
NEUTRAL = ("#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")


def bulletin_period(conn, period_key: str | None, now: datetime) -> Period:
    """The header's period as a bulletin period: its whole months (the current one up to now).
    "All time" reads last month, the period a monthly bulletin reports (the page names the
    dates it shows)."""
    resolved = resolve_period(period_key, now) or resolve_period("last_month", now)
    return Period.of(start=resolved.first_month, end=resolved.end_month, as_of=now, zone=calendar_zone(conn))


def selection_for(user, *, by: str, period: Period, categories, parent: str | None) -> Selection:
    return Selection(
        by=by, period=period, scope=scope_of(user), category=tuple(categories or ()), parent=parent
    )


class KeptFigures:
    """Figures the leaders' pages computed, kept per key for ``seconds`` in this worker (the
    app's ``analytics_keep_seconds``). A month's indicators read every case of the month (about
    0.3 s at a million incidents, 1 s for a year of monthly figures) and a bulletin changes
    slowly; the API always computes afresh."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._values: dict = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, compute):
        now = time.monotonic()
        with self._lock:
            found = self._values.get(key)
            if found is not None and now - found[0] < self.seconds:
                return found[1]
        value = compute()
        if self.seconds > 0:
            with self._lock:
                for stale in [k for k, (at, _) in self._values.items() if now - at >= self.seconds]:
                    del self._values[stale]
                self._values[key] = (now, value)
        return value


def kept(key: tuple, compute):
    """``compute()``, or what it gave within the app's keep time (see ``KeptFigures``)."""
    store = current_app.extensions.get("gridwatch.kept_figures")
    if store is None:
        settings = current_app.extensions["gridwatch.settings"]
        store = current_app.extensions.setdefault(
            "gridwatch.kept_figures", KeptFigures(settings.analytics_keep_seconds)
        )
    return store.get(key, compute)


def _selection_key(selection: Selection) -> tuple:
    # Not the period's as_of: kept figures are as of when they were computed.
    period = selection.period
    return (selection.by, selection.scope.key, selection.category, selection.parent, period.start, period.end)


def figures(conn, selection: Selection) -> dict:
    """The selection's indicator rows and totals (``response_rows``), kept."""
    return kept(("figures", *_selection_key(selection)), lambda: response_rows(conn, selection))


def trend_of(conn, selection: Selection, *, months: int, now: datetime) -> list[dict]:
    """The monthly series of the last ``months`` months, kept."""
    first = first_month_of_trend(now, months)
    key = ("trend", selection.scope.key, selection.category, selection.parent, first, months)
    return kept(key, lambda: monthly(conn, selection, first_month=first, months=months, as_of=now))


def local_name(row: dict, language: str, zh: str = "name_zh") -> str:
    """A unit's name in the page's language (Chinese when it has no English one)."""
    return row[zh] if language == "zh" else (row.get("name_en") or row[zh])


def first_month_of_trend(now: datetime, months: int = 12) -> date:
    return add_months(now.astimezone(LOCAL_TIME).date().replace(day=1), 1 - months)


def format_figure(name: str, value, language: str) -> str:
    if value is None:
        return "—"
    if name in RATE_INDICATORS or name.endswith("_share") or name.endswith("_rate"):
        return f"{value * 100:.2f}%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return f"{value:,}"


def colour_scale(name: str, values: list[float]) -> dict:
    """Class breaks (quantiles of the shown values) and colours for ``hideout``."""
    present = sorted(v for v in values if v is not None)
    colours = (
        GOOD_HIGH if name in RATE_INDICATORS else BAD_HIGH if name in ("backlog", "overdue") else NEUTRAL
    )
    if name in ("median_close_h",):
        colours = BAD_HIGH
    if not present:
        return {"breaks": [], "colours": list(colours), "property": name}
    steps = len(colours)
    breaks = sorted({present[min(len(present) - 1, (len(present) * k) // steps)] for k in range(1, steps)})
    # Equal values give fewer classes: spread the colours from the low end to the high one.
    picked = [colours[round(i * (steps - 1) / max(1, len(breaks)))] for i in range(len(breaks) + 1)]
    return {"breaks": breaks, "colours": picked, "property": name}


def choropleth(map_id: str, layer_id: str, *, height: str = "28rem", canvas: bool = False) -> dl.Map:
    """A map without tiles (intranet): the units drawn from GeoJSON, coloured by
    ``gridwatchAnalytics.choropleth`` (assets/analytics.js) from the layer's ``hideout``."""
    return dl.Map(
        [
            dl.GeoJSON(
                id=layer_id,
                style={"variable": "gridwatchAnalytics.choropleth"},
                hoverStyle={"variable": "gridwatchAnalytics.hover"},
                onEachFeature={"variable": "gridwatchAnalytics.tooltip"},
                zoomToBounds=True,
                hideout={"breaks": [], "colours": [], "property": ""},
            )
        ],
        id=map_id,
        center=[29.9, 103.3],
        zoom=9,
        # Quarter zoom steps: framing a county to whole zoom levels leaves it at half the map.
        zoomSnap=0.25,
        zoomDelta=0.5,
        # A canvas for thousands of grids: SVG paths by the thousand take seconds to draw.
        preferCanvas=canvas,
        style={"height": height, "background": "#f4f6f8"},
        attributionControl=False,
    )


def legend(scale: dict, name: str, language: str) -> html.Div:
    """One swatch per class: below the first break, then from each break up."""
    breaks = scale["breaks"]
    labels = ["<" + format_figure(name, breaks[0], language)] if breaks else []
    labels += ["≥" + format_figure(name, low, language) for low in breaks]
    items = [
        html.Span([html.I(style={"background": colour}), label], className="gw-legend-item")
        for colour, label in zip(scale["colours"], labels, strict=False)
    ]
    return html.Div([html.Strong(translate(f"indicator.{name}", language)), *items], className="gw-legend")


# AG Grid's pager in Chinese (its own words are English). "of" serves both "1 to 15 of 620" and
# "Page 1 of 42": "1 至 15 / 620", "页 1 / 42".
PAGER_ZH = {
    "page": "页", "of": "/", "to": "至", "more": "更多", "firstPage": "首页", "previousPage": "上一页",
    "nextPage": "下一页", "lastPage": "末页",
}  # fmt: skip


def ranked_table(table_id: str, *, page_size: int | None = None, language: str = "zh") -> dag.AgGrid:
    """A sortable table (AG Grid, served by Dash from the package like every component): rows
    and columns come from the page's callback; a ``markdown`` column holds links. With
    ``page_size``, in pages of that many rows (a county's coverage gaps run to hundreds)."""
    paging = {}
    if page_size:
        paging = {"pagination": True, "paginationPageSize": page_size, "paginationPageSizeSelector": False}
        if language == "zh":
            paging["localeText"] = PAGER_ZH
    return dag.AgGrid(
        id=table_id,
        rowData=[],
        columnDefs=[],
        defaultColDef={"sortable": True, "resizable": True},
        dashGridOptions={
            "domLayout": "autoHeight",
            "suppressCellFocus": True,
            "suppressColumnVirtualisation": True,
            **paging,
        },
        columnSize="autoSize",
        className="ag-theme-alpine gw-ranked",
    )


def bulletin_totals(conn, selection: Selection) -> tuple[dict, dict, dict]:
    """The selection's totals for its period, the one before and a year earlier."""
    period = selection.period
    shown = (period, period.compared("previous"), period.compared("last_year"))
    return tuple(figures(conn, replace(selection, period=each))["totals"] for each in shown)


def bulletin_line(totals: dict, period: Period, language: str) -> str:
    """The bulletin's sentence: "2026-11-01 — 2026-11-30：接报1,054件，立案996件，…"."""
    return translate("bulletin.line", language).format(
        period=f"{period.start.isoformat()} — {(period.end - timedelta(days=1)).isoformat()}",
        received=f"{totals['received']:,}",
        filed=f"{totals['filed']:,}",
        due=f"{totals['due']:,}",
        closed=f"{totals['closed']:,}",
        closure=format_figure("closure_rate", totals["closure_rate"], language),
        on_time=f"{totals['closed_on_time']:,}",
        on_time_rate=format_figure("on_time_rate", totals["on_time_rate"], language),
    )


def change(now, before, name: str, language: str) -> str:
    """Current minus compared: rates in percentage points, counts signed."""
    if now is None or before is None:
        return "—"
    if name.endswith("_rate"):
        points = (now - before) * 100
        sign = "+" if points >= 0 else "−"
        return translate("bulletin.points", language).format(sign=sign, value=f"{abs(points):.2f}")
    return f"{now - before:+,}"


def comparisons(totals: dict, previous: dict, last_year: dict, language: str, id_prefix: str) -> list:
    """The on-time rate and the count received against the period before and a year earlier."""
    colon = "：" if language == "zh" else ": "
    comma = "，" if language == "zh" else ", "
    return [
        html.Span(
            f"{translate(key, language)}{colon}{translate('indicator.on_time_rate', language)} "
            f"{change(totals['on_time_rate'], other['on_time_rate'], 'on_time_rate', language)}{comma}"
            f"{translate('indicator.received', language)} "
            f"{change(totals['received'], other['received'], 'received', language)}",
            className="gw-compare",
            id=f"{id_prefix}-{key.split('.')[1]}",
        )
        for key, other in (("bulletin.previous", previous), ("bulletin.last_year", last_year))
    ]
