"""Web Mercator tile arithmetic (the slippy-map scheme of ST_TileEnvelope), in plain Python."""

from __future__ import annotations

import math

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
