"""Web Mercator tile arithmetic (the slippy-map scheme of ST_TileEnvelope), and which tiles an
incident's heatmap hexagon crosses."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import shapely
from h3.api import basic_int as h3

from layers.catalog import DENSITY_DETAIL_FINEST, DENSITY_FINEST, DENSITY_RESOLUTIONS

# The zooms a changed incident is announced for (the layers' zoom range).
ANNOUNCED_ZOOMS = range(5, 19)


def tile_fraction(lon: float, lat: float, z: int) -> tuple[float, float]:
    """Position in tile units at zoom z: the integer parts are the tile's x and y."""
    n = 2**z
    lat = max(-85.05112878, min(85.05112878, lat))
    fx = (lon + 180.0) / 360.0 * n
    fy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return fx, fy


def tile_ranges(bbox: tuple[float, float, float, float], z: int, margin: float) -> tuple[int, int, int, int]:
    """Inclusive x and y ranges of the tiles at zoom z within ``margin`` tile units of a lon/lat bbox."""
    west, south, east, north = bbox
    x0, y0 = tile_fraction(west, north, z)
    x1, y1 = tile_fraction(east, south, z)
    last = 2**z - 1
    return (
        max(0, math.floor(x0 - margin)),
        min(last, math.floor(x1 + margin)),
        max(0, math.floor(y0 - margin)),
        min(last, math.floor(y1 + margin)),
    )


def bbox_touches_tile(bbox: tuple[float, float, float, float], z: int, x: int, y: int, margin: float) -> bool:
    x0, x1, y0, y1 = tile_ranges(bbox, z, margin)
    return x0 <= x <= x1 and y0 <= y <= y1


def point_tiles(lon: float, lat: float) -> list[str]:
    """The tile holding a point at every announced zoom, as ``z/x/y``."""
    tiles = []
    for z in ANNOUNCED_ZOOMS:
        fx, fy = tile_fraction(lon, lat, z)
        tiles.append(f"{z}/{math.floor(fx)}/{math.floor(fy)}")
    return tiles


def density_resolution(z: int, *, filtered: bool) -> int:
    """The H3 resolution a heatmap tile at zoom z draws (tiles.incident_density in SQL)."""
    res = DENSITY_RESOLUTIONS[max(5, min(18, z))]
    return min(res, DENSITY_DETAIL_FINEST) if filtered else res


@lru_cache(maxsize=4096)
def hexagon_tiles(cell: int, z: int) -> frozenset[tuple[int, int]]:
    """The tiles (x, y) at zoom z that an H3 cell's outline crosses. The tile function draws the
    outline as its corners joined by straight edges in Web Mercator (tiles.h3_outlines), as here."""
    corners = [tile_fraction(lon, lat, z) for lat, lon in h3.cell_to_boundary(cell)]
    last = 2**z - 1
    xs, ys = (
        range(max(0, math.floor(min(axis))), min(last, math.floor(max(axis))) + 1)
        for axis in zip(*corners, strict=True)
    )
    if len(xs) == 1 and len(ys) == 1:
        return frozenset({(xs[0], ys[0])})
    # All candidate tiles in one vectorised predicate: a change announces hundreds at zoom 16-18.
    grid_x, grid_y = (axis.ravel() for axis in np.meshgrid(np.array(xs), np.array(ys)))
    hit = shapely.intersects(shapely.box(grid_x, grid_y, grid_x + 1, grid_y + 1), shapely.Polygon(corners))
    return frozenset(zip(grid_x[hit].tolist(), grid_y[hit].tolist(), strict=True))


def density_cell(lon: float, lat: float, res: int) -> int:
    """The heatmap hexagon at resolution res that counts a point: the ancestor of its finest cell
    (as the rollups aggregate), which near an edge may differ from the cell holding the point."""
    return h3.cell_to_parent(h3.latlng_to_cell(lat, lon, DENSITY_FINEST), res)


def density_tiles(lon: float, lat: float, z: int, *, filtered: bool) -> frozenset[tuple[int, int]]:
    """The heatmap tiles at zoom z whose hexagon counting the point changes with it."""
    return hexagon_tiles(density_cell(lon, lat, density_resolution(z, filtered=filtered)), z)


def hexagon_margin(z: int, lat: float) -> float:
    """How far (in tile units at zoom z) a heatmap hexagon may reach beyond the points in it: twice
    the mean edge of the larger (filtered) hexagon, for the size H3 cells vary by."""
    radius_m = 2 * h3.average_hexagon_edge_length(density_resolution(z, filtered=True), unit="m")
    return radius_m / math.cos(math.radians(lat)) / (2 * math.pi * 6378137.0 / 2**z)


def announced_density_tiles(lon: float, lat: float) -> list[str]:
    """Every heatmap tile (plain or filtered) a change at the point touches: ``z/x/y``, or
    ``z/x0-x1/y`` for the tiles x0 to x1 of a row. Zoomed in, a hexagon crosses hundreds of tiles
    (477 at zoom 5-18 in the demo county, 9 KB as a list, sent to every open stream); as rows of
    a convex outline they take about 50 entries."""
    return list(_announced_density_tiles(h3.latlng_to_cell(lat, lon, DENSITY_FINEST)))


@lru_cache(maxsize=16_384)
def _announced_density_tiles(finest_cell: int) -> tuple[str, ...]:
    # Every hexagon counting a point is an ancestor of its finest cell: points in one cell (a
    # village's reports) share the answer, which takes about 3 ms to work out.
    entries = []
    for z in ANNOUNCED_ZOOMS:
        touched = frozenset().union(
            *(
                hexagon_tiles(h3.cell_to_parent(finest_cell, density_resolution(z, filtered=filtered)), z)
                for filtered in (False, True)
            )
        )
        rows: dict[int, list[int]] = {}
        for x, y in touched:
            rows.setdefault(y, []).append(x)
        for y in sorted(rows):
            xs = sorted(rows[y])
            start = previous = xs[0]
            for x in [*xs[1:], None]:
                if x is not None and x == previous + 1:
                    previous = x
                    continue
                entries.append(f"{z}/{start}/{y}" if start == previous else f"{z}/{start}-{previous}/{y}")
                if x is not None:
                    start = previous = x
    return tuple(entries)


def expand_tile_rows(entries: list[str]) -> set[str]:
    """The ``z/x/y`` of each tile that ``announced_density_tiles`` entries name."""
    tiles = set()
    for entry in entries:
        z, xs, y = entry.split("/")
        first, _, last = xs.partition("-")
        tiles.update(f"{z}/{x}/{y}" for x in range(int(first), int(last or first) + 1))
    return tiles
