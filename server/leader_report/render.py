"""The report as one HTML file: folium maps, plotly charts and tables in a Jinja template, with
Leaflet, its heatmap plugin and plotly inlined (server/leader_report/assets.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import folium
import plotly.graph_objects as go
import plotly.io
from branca.element import Figure
from folium.plugins import HeatMap
from jinja2 import Environment, FileSystemLoader, select_autoescape

from dashboard.palette import COVERAGE_STATUS_COLOURS, HOTSPOT_CLASS_COLOURS
from server.leader_report.assets import inline_assets
from server.leader_report.texts import text

TEMPLATES = Path(__file__).parent / "templates"
FONT = '"WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", sans-serif'
# On-time rate bins and colours (red: poor, green: good), as a leader reads a traffic light.
RATE_BREAKS = (0.6, 0.7, 0.8, 0.9)
RATE_COLOURS = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
NO_DATA = "#dddddd"
GAPS = ("no_member", "unpatrolled")
SPOT_CLASSES = ("hot_99", "hot_95", "hot_90", "cold_90", "cold_95", "cold_99")
SHOWN_FIGURES = ("received", "filed", "due", "closed", "closed_on_time", "closure_rate", "on_time_rate")
RATES = ("closure_rate", "on_time_rate")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def change(current, earlier, name: str, lang: str) -> str:
    if current is None or earlier is None:
        return "—"
    if name in RATES:
        points = (current - earlier) * 100
        return f"{points:+.2f}" + ("个百分点" if lang == "zh" else " pts")
    return f"{current - earlier:+d}"


def _rate_colour(rate: float | None) -> str:
    if rate is None:
        return NO_DATA
    return RATE_COLOURS[sum(rate >= bound for bound in RATE_BREAKS)]


def _bare_map(bounds: list[list[float]], basemap: dict | None) -> folium.Map:
    """A map with no external tiles (the county's own outlines and names instead), or the
    configured intranet basemap; no folium CDN links (the assets are inlined)."""
    # Quarter zoom steps: framing the county to whole levels would leave half the map empty.
    fmap = folium.Map(tiles=None, control_scale=True, prefer_canvas=False, zoom_control=True, zoom_snap=0.25)
    fmap.default_js, fmap.default_css = [], []
    if basemap:
        folium.TileLayer(basemap["url"], attr=basemap["attribution"] or " ", name="basemap").add_to(fmap)
    fmap.fit_bounds(bounds)
    return fmap


def _bounds(features: list[dict]) -> list[list[float]]:
    xs, ys = [], []

    def walk(coordinates):
        if isinstance(coordinates[0], (int, float)):
            xs.append(coordinates[0])
            ys.append(coordinates[1])
        else:
            for part in coordinates:
                walk(part)

    for feature in features:
        walk(feature["geometry"]["coordinates"])
    return [[min(ys), min(xs)], [max(ys), max(xs)]]


def _unit_features(data: dict, lang: str) -> list[dict]:
    figures = {row["code"]: row for row in data["units"]}
    features = []
    for code, shape in data["unit_shapes"].items():
        row = figures.get(code)
        rate = row["on_time_rate"] if row else None
        name = shape["name_zh"] if lang == "zh" else (shape["name_en"] or shape["name_zh"])
        features.append(
            {
                "type": "Feature",
                "geometry": shape["geometry"],
                "properties": {
                    "name": name,
                    "on_time": percent(rate),
                    "closure": percent(row["closure_rate"] if row else None),
                    "due": row["due"] if row else 0,
                    "colour": _rate_colour(rate),
                },
            }
        )
    return features


def _names_layer(features: list[dict], lang: str) -> folium.FeatureGroup:
    """The units' names at their outlines' centres (a basemap's place names)."""
    layer = folium.FeatureGroup(name=text("layer.names", lang))
    for feature in features:
        (south, west), (north, east) = _bounds([feature])
        folium.Marker(
            [(south + north) / 2, (west + east) / 2],
            icon=folium.DivIcon(html=f'<div class="place-name">{feature["properties"]["name"]}</div>'),
        ).add_to(layer)
    return layer


def response_map(data: dict, lang: str, basemap: dict | None) -> folium.Map:
    units = _unit_features(data, lang)
    fmap = _bare_map(_bounds(units), basemap)
    unit_name = text(f"unit.{data['unit']}", lang)
    folium.GeoJson(
        {"type": "FeatureCollection", "features": units},
        name=text("layer.on_time", lang, unit=unit_name),
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"],
            "color": "#555",
            "weight": 1,
            "fillOpacity": 0.75,
        },  # fmt: skip
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "on_time", "closure", "due"],
            aliases=[
                text("column.name", lang),
                text("indicator.on_time_rate", lang),
                text("indicator.closure_rate", lang),
                text("indicator.due", lang),
            ],  # fmt: skip
        ),
    ).add_to(fmap)
    _classed_layer(
        data["coverage"], "status", "coverage.status", GAPS, COVERAGE_STATUS_COLOURS,
        name=text("layer.coverage", lang), lang=lang,
    ).add_to(fmap)  # fmt: skip
    _names_layer(units, lang).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    return fmap


def _classed_layer(
    features: list[dict],
    key: str,
    message: str,
    shown: tuple,
    colours: dict,
    *,
    name: str,
    lang: str,
    extra: tuple = (),
) -> folium.GeoJson | folium.FeatureGroup:
    """The features whose ``key`` property is one of ``shown``, coloured by it, with its name as
    the tooltip (an empty group when there are none, so the layer switch still lists it)."""
    kept = [
        {**f, "properties": {"name": f["properties"]["name"], key: f["properties"][key],
                             "label": text(f"{message}.{f['properties'][key]}", lang),
                             **{field: f["properties"][field] for field in extra}}}
        for f in features
        if f["properties"][key] in shown
    ]  # fmt: skip
    if not kept:
        return folium.FeatureGroup(name=name)
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": kept},
        name=name,
        style_function=lambda f: {
            "fillColor": colours[f["properties"][key]],
            "color": "#444",
            "weight": 0.5,
            "fillOpacity": 0.85,
        },  # fmt: skip
        tooltip=folium.GeoJsonTooltip(fields=["name", "label", *extra], labels=False),
    )


def hotspot_map(data: dict, lang: str, basemap: dict | None) -> folium.Map:
    units = _unit_features(data, lang)
    fmap = _bare_map(_bounds(units), basemap)
    folium.GeoJson(
        {"type": "FeatureCollection", "features": [{**f, "properties": {}} for f in units]},
        name=text("layer.outlines", lang),
        style_function=lambda f: {"fillColor": "#ffffff", "color": "#666", "weight": 1, "fillOpacity": 0.3},
        control=False,
    ).add_to(fmap)
    _classed_layer(
        data["hotspots"], "class", "hotspots.class", SPOT_CLASSES, HOTSPOT_CLASS_COLOURS,
        name=text("layer.hotspots", lang), lang=lang, extra=("count",),
    ).add_to(fmap)  # fmt: skip
    if data["heat"]:
        names = "、".join(_category_name(row, lang) for row in data["heat_categories"])
        heat = HeatMap(data["heat"], name=text("layer.heat", lang, categories=names), radius=14, blur=12,
                       min_opacity=0.3, show=False)  # fmt: skip
        heat.default_js, heat.default_css = [], []
        heat.add_to(fmap)
    _names_layer(units, lang).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    return fmap


def _category_name(row: dict, lang: str) -> str:
    return row["name"] if lang == "zh" else (row.get("name_en") or row["name"])


def trend_charts(data: dict, lang: str) -> list[str]:
    months = [row["month"] for row in data["trend"]]
    layout = {"font": {"family": FONT, "size": 12}, "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
              "height": 300, "legend": {"orientation": "h", "y": -0.2}, "paper_bgcolor": "white"}  # fmt: skip
    counts = go.Figure(
        [
            go.Bar(
                x=months, y=[row["received"] for row in data["trend"]], name=text("indicator.received", lang)
            ),
            go.Bar(x=months, y=[row["due"] for row in data["trend"]], name=text("indicator.due", lang)),
        ],
        layout={**layout, "title": text("chart.counts", lang), "barmode": "group"},
    )
    rates = go.Figure(
        [
            go.Scatter(
                x=months,
                y=[row[name] for row in data["trend"]],
                name=text(f"indicator.{name}", lang),
                mode="lines+markers",
            )  # fmt: skip
            for name in RATES
        ],
        layout={**layout, "title": text("chart.rates", lang), "yaxis": {"tickformat": ".0%"}},
    )
    config = {"displayModeBar": False, "responsive": True}
    return [
        plotly.io.to_html(figure, include_plotlyjs=False, full_html=False, config=config, div_id=f"trend-{k}")
        for k, figure in enumerate((counts, rates))
    ]


def _bulletin_rows(data: dict, lang: str) -> list[dict]:
    b = data["bulletin"]
    rows = []
    for name in SHOWN_FIGURES:
        shown = percent if name in RATES else (lambda v: "—" if v is None else f"{v:,}")
        rows.append(
            {
                "label": text(f"indicator.{name}", lang),
                "current": shown(b["current"][name]),
                "previous": shown(b["previous"][name]),
                "last_year": shown(b["last_year"][name]),
                "vs_previous": change(b["current"][name], b["previous"][name], name, lang),
                "vs_last_year": change(b["current"][name], b["last_year"][name], name, lang),
            }
        )
    return rows


def render_report(data: dict, *, lang: str, made_at: datetime, basemap: dict | None) -> str:
    """The whole file."""
    period = data["period"]
    figure = Figure()
    maps = [("response", response_map(data, lang, basemap)), ("hotspots", hotspot_map(data, lang, basemap))]
    for _, fmap in maps:
        figure.add_child(fmap)
    figure.render()
    zone = period.zone
    area = data["area"]
    area_name = area["name_zh"] if lang == "zh" else (area["name_en"] or area["name_zh"])
    current = data["bulletin"]["current"]
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    return environment.get_template("leader_report.html").render(
        lang=lang,
        t=lambda key, **values: text(key, lang, **values),
        assets=inline_assets(),
        font=FONT,
        title=text("title", lang, area=area_name),
        period_line=text(
            "period", lang, first=period.start.isoformat(), last=(period.end - timedelta(days=1)).isoformat()
        ),  # fmt: skip
        made_line=text(
            "made",
            lang,
            at=made_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            as_of=period.as_of.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            by=data["made_by"],
        ),  # fmt: skip
        bulletin_line=text(
            "bulletin.line",
            lang,
            received=f"{current['received']:,}",
            filed=f"{current['filed']:,}",
            due=f"{current['due']:,}",
            closed=f"{current['closed']:,}",
            closure=percent(current["closure_rate"]),
            on_time=f"{current['closed_on_time']:,}",
            on_time_rate=percent(current["on_time_rate"]),
        ),  # fmt: skip
        bulletin_rows=_bulletin_rows(data, lang),
        definitions=[
            text(f"definition.{name}", lang)
            for name in ("received", "filed", "due", "closure_rate", "on_time_rate")
        ],
        figures_json=json.dumps(
            {"area": area["code"], **period.describe(), "bulletin": data["bulletin"]}, ensure_ascii=False
        ).replace("</", "<\\/"),
        folium_header=figure.header.render(),
        folium_script=figure.script.render(),
        maps=[(key, fmap.get_name()) for key, fmap in maps],
        rate_legend=list(zip(("< 60%", "60–70%", "70–80%", "80–90%", "≥ 90%"), RATE_COLOURS, strict=True)),
        no_data=NO_DATA,
        gap_legend=[(text(f"coverage.status.{key}", lang), COVERAGE_STATUS_COLOURS[key]) for key in GAPS],
        spot_legend=[
            (text(f"hotspots.class.{key}", lang), HOTSPOT_CLASS_COLOURS[key]) for key in SPOT_CLASSES
        ],
        unit_name=text(f"unit.{data['unit']}", lang),
        units=data["units"],
        slowest=data["slowest_grids"],
        overdue=data["overdue_cases"],
        categories=data["categories"],
        charts=trend_charts(data, lang),
        percent=percent,
        change=lambda current, earlier, name: change(current, earlier, name, lang),
        name_of=lambda row, key="name": row[key] if lang == "zh" else (row.get(f"{key}_en") or row[key]),
        local=lambda moment: moment.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
    )
