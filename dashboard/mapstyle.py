"""The live map's MapLibre style, built in Python so that its labels, legend and number formats
follow the language and the basemap follows the settings; ``assets/livemap.js`` draws it.

Sources are gridwatch's own vector tiles (``/tiles/<layer>/{z}/{x}/{y}.mvt``), one source per
tile layer so that a switched-off layer requests nothing, plus an optional raster basemap. With
no basemap the grids tiles themselves make the map readable: outlines and names of townships
(zoom 5-9), villages (10-12) and grids (13+).

Over a GCJ-02 basemap (Gaode, Tencent) the WGS84 overlay is drawn shifted by the GCJ-02 offset
at the county's centre: the offset varies by only metres across a county, and a translate that
doubles per zoom level keeps it exact in map units at every zoom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain

from dashboard.i18n import format_count, translate
from dashboard.reference import name_in
from layers.catalog import GRID_LEVEL_ZOOMS
from server.coords import wgs84_to_gcj02

# The dashboard's font stack (assets/gridwatch.css): MapLibre draws label glyphs locally with it,
# so no glyph server (and no CDN) is needed.
FONT_STACK = ["Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei"]
TILE_LAYERS = {"grids": "grids", "incidents": "incidents", "density": "incident_density"}
# Which style layers each layer switch shows or hides.
SWITCHES = {
    "grids": ("grid-fill", "grid-outline"),
    "incidents": ("incident-cells", "incident-cell-counts", "incident-points"),
    "heatmap": ("density",),
    "labels": tuple(f"labels-{level}" for level in GRID_LEVEL_ZOOMS),
}
DEFAULT_SWITCHES = ("grids", "incidents", "labels")
CATEGORY_COLOURS = {
    "safety_hazard": "#d62728",
    "straw_burning": "#ff7f0e",
    "sanitation": "#8c564b",
    "dispute": "#9467bd",
    "public_facility": "#1f77b4",
    "epidemic": "#e377c2",
    "resident_service": "#2ca02c",
    "flood_geohazard": "#17becf",
}
OTHER_CATEGORY = "#7f7f7f"
# The ring says where a case stands: black waits for the centre, blue is with a department,
# brown is parked on the register (挂账), green is handled; finished cases fade.
STATUS_RINGS = {
    "reported": "#111111",
    "accepted": "#555555",
    "dispatched": "#1f4e79",
    "in_progress": "#1f4e79",
    "registered": "#8d6e63",
    "resolved": "#2e7d32",
    "verified": "#2e7d32",
    "closed": "#bdbdbd",
    "rejected": "#bdbdbd",
}
OVERDUE_RED = "#e00000"
# Heatmap colour by incidents per hexagon, interpolated between these counts (style and legend).
DENSITY_STOPS = ((1, "#fee8c8"), (20, "#fdbb84"), (200, "#e34a33"), (2000, "#7f0000"))
LABEL_SIZES = {"township": 14, "village": 12, "grid": 11}
WORLD_PIXELS = 512  # MapLibre's world size at zoom 0


@dataclass(frozen=True)
class Basemap:
    url: str
    attribution: str
    crs: str  # wgs84 or gcj02


def gcj02_shift(lon: float, lat: float) -> list[float]:
    """Degrees (east, north) that a WGS84 point moves to land on a GCJ-02 basemap here."""
    shifted_lon, shifted_lat = wgs84_to_gcj02(lon, lat)
    return [shifted_lon - lon, shifted_lat - lat]


def gcj02_translate(lon: float, lat: float) -> list[float]:
    """The screen offset (pixels at zoom 0, x right, y down) that moves WGS84 data onto a GCJ-02
    basemap at this place."""
    d_lon, d_lat = gcj02_shift(lon, lat)
    shifted_lon, shifted_lat = lon + d_lon, lat + d_lat

    def mercator_y(latitude: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(latitude) / 2))

    dx = (shifted_lon - lon) / 360 * WORLD_PIXELS
    dy = -(mercator_y(shifted_lat) - mercator_y(lat)) / (2 * math.pi) * WORLD_PIXELS
    return [dx, dy]


def _translate(offset: list[float] | None):
    if offset is None:
        return [0, 0]
    top = 24
    scale = 2**top
    return [
        "interpolate",
        ["exponential", 2],
        ["zoom"],
        0,
        ["literal", offset],
        top,
        ["literal", [offset[0] * scale, offset[1] * scale]],
    ]


def count_text(language: str, value) -> list:
    """A count as map text, formatted like ``i18n.format_count``."""
    grouped = ["number-format", value, {"locale": "zh-CN" if language == "zh" else "en"}]
    if language != "zh":
        return grouped
    tens_of_thousands = ["/", ["round", ["/", value, 1000]], 10]
    return ["case", [">=", value, 10_000], ["concat", ["to-string", tens_of_thousands], "万"], grouped]


def build_style(*, language: str, basemap: Basemap | None, centre: tuple[float, float], labels: dict) -> dict:
    """The style; ``labels`` is the place names' GeoJSON (``mapconfig.label_points``)."""
    offset = gcj02_translate(*centre) if basemap is not None and basemap.crs == "gcj02" else None
    translate_by = _translate(offset)
    own = translate("map.own_data", language)
    sources: dict[str, dict] = {
        name: {
            "type": "vector",
            "tiles": [f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"],
            "minzoom": 5,
            "maxzoom": 18,
            "attribution": own,
        }
        for name, layer in TILE_LAYERS.items()
    }
    # One label point per place, loaded with the first tiles: a polygon's own label would repeat in
    # every tile it crosses, and waiting for the grid tiles to place labels costs a second pass.
    sources["labels"] = {"type": "geojson", "data": labels}
    layers: list[dict] = []
    if basemap is not None:
        sources["basemap"] = {
            "type": "raster",
            "tiles": [basemap.url],
            "tileSize": 256,
            "attribution": basemap.attribution,
        }
        layers.append({"id": "basemap", "type": "raster", "source": "basemap"})
    # Without a basemap the page's own background (gridwatch.css, .gw-map) shows through: one
    # full-screen pass less per frame, which counts where WebGL runs on the CPU.
    overlay_opacity = 0.45 if basemap is not None else 0.7
    layers += [
        {
            "id": "grid-fill",
            "type": "fill",
            "source": "grids",
            "source-layer": "grids",
            "paint": {
                "fill-color": [
                    "case",
                    [">", ["get", "overdue"], 0],
                    "#f4a3a3",
                    [">", ["get", "open"], 0],
                    ["interpolate", ["linear"], ["get", "open"], 1, "#fff3c4", 20, "#f7c873"],
                    "#e3efe0",
                ],
                "fill-opacity": overlay_opacity,
                "fill-translate": translate_by,
            },
        },
        {
            "id": "grid-outline",
            "type": "line",
            "source": "grids",
            "source-layer": "grids",
            "paint": {
                "line-color": "#4a5866",
                "line-width": ["match", ["get", "level"], "township", 2, "village", 1.2, 0.6],
                "line-translate": translate_by,
            },
        },
        {
            "id": "density",
            "type": "fill",
            "source": "density",
            "source-layer": "incident_density",
            "paint": {
                "fill-color": [
                    "interpolate",
                    ["linear"],
                    ["get", "count"],
                    *chain.from_iterable(DENSITY_STOPS),
                ],
                "fill-opacity": 0.65,
                "fill-translate": translate_by,
            },
        },
        {
            "id": "incident-cells",
            "type": "circle",
            "source": "incidents",
            "source-layer": "incidents",
            "filter": ["has", "count"],
            "paint": {
                "circle-radius": ["interpolate", ["linear"], ["sqrt", ["get", "count"]], 1, 7, 30, 22],
                "circle-color": ["case", [">", ["get", "open"], 0], "#1f4e79", "#8aa2b8"],
                "circle-opacity": 0.8,
                "circle-stroke-color": "#ffffff",
                "circle-stroke-width": 1,
                "circle-translate": translate_by,
            },
        },
        {
            "id": "incident-cell-counts",
            "type": "symbol",
            "source": "incidents",
            "source-layer": "incidents",
            "filter": ["has", "count"],
            "layout": {
                "text-field": count_text(language, ["get", "count"]),
                "text-font": FONT_STACK,
                "text-size": 11,
                "text-allow-overlap": True,
            },
            "paint": {"text-color": "#ffffff", "text-translate": translate_by},
        },
        {
            "id": "incident-points",
            "type": "circle",
            "source": "incidents",
            "source-layer": "incidents",
            # Points carry their incident id as the feature id, cells a count.
            "filter": ["!", ["has", "count"]],
            "paint": {
                "circle-radius": ["interpolate", ["linear"], ["zoom"], 15, 5, 18, 8],
                "circle-color": [
                    "match",
                    ["get", "category"],
                    *[item for pair in CATEGORY_COLOURS.items() for item in pair],
                    OTHER_CATEGORY,
                ],
                "circle-opacity": ["match", ["get", "status"], ["closed", "rejected"], 0.35, 0.95],
                "circle-stroke-color": [
                    "case",
                    ["boolean", ["feature-state", "overdue"], False],
                    OVERDUE_RED,
                    [
                        "match",
                        ["get", "status"],
                        *[item for pair in STATUS_RINGS.items() for item in pair],
                        "#000",
                    ],
                ],
                "circle-stroke-width": ["case", ["boolean", ["feature-state", "overdue"], False], 3.5, 1.5],
                "circle-translate": translate_by,
            },
        },
    ]
    # Names of the level the grids tiles show at each zoom (layers/catalog.py), one layer per level
    # so that MapLibre lays out only the names of the zoom shown.
    layers += [
        {
            "id": f"labels-{level}",
            "type": "symbol",
            "source": "labels",
            "filter": ["==", ["get", "level"], level],
            "minzoom": first,
            **({"maxzoom": last + 1} if last < 18 else {}),  # the deepest level to the last zoom
            "layout": {
                "text-field": ["get", "name"],
                "text-font": FONT_STACK,
                "text-size": LABEL_SIZES[level],
                "text-max-width": 8,
            },
            "paint": {
                "text-color": "#27323d",
                "text-halo-color": "#ffffff",
                "text-halo-width": 1.5,
                "text-translate": translate_by,
            },
        }
        for level, (first, last) in GRID_LEVEL_ZOOMS.items()
    ]
    return {"version": 8, "name": "gridwatch live map", "sources": sources, "layers": layers}


def legend(language: str, categories: list[dict]) -> dict:
    """What the legend lists, in the language: grid, category and heatmap colours."""
    return {
        "heatmap": [
            *({"colour": c, "label": format_count(n, language)} for n, c in DENSITY_STOPS[:-1]),
            {"colour": DENSITY_STOPS[-1][1], "label": format_count(DENSITY_STOPS[-1][0], language) + "+"},
        ],
        "grids": [
            {"colour": "#e3efe0", "label": translate("legend.no_open", language)},
            {"colour": "#f7c873", "label": translate("legend.open", language)},
            {"colour": "#f4a3a3", "label": translate("legend.overdue", language)},
        ],
        "categories": [
            {"colour": CATEGORY_COLOURS.get(row["code"], OTHER_CATEGORY), "label": name_in(row, language)}
            for row in categories
        ],
    }
