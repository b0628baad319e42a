"""GCJ-02 ("Mars coordinates", used by Gaode/AMap and Tencent maps) to and from WGS84.

gridwatch stores WGS84 (EPSG:4326). Data drawn on a GCJ-02 map is shifted by hundreds of metres,
so it is converted before it is stored. The forward formula is the published one; the inverse
has no closed form and is found by fixed-point iteration (converges to < 1e-9° in a few steps).
Outside China's rough rectangle there is no offset. Vectorised with numpy for the importers and
the demo; a scalar in gives plain floats out, for single points from the API.
"""

from __future__ import annotations

import numpy as np

# Krasovsky 1940 ellipsoid, as the GCJ-02 formula uses it.
_A = 6378245.0
_EE = 0.00669342162296594323


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = lon - 105.0
    y = lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    return dlon, dlat


def outside_china(lon, lat):
    """The rough rectangle where the offset applies (the formula's own convention)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return ~((lon > 73.66) & (lon < 135.05) & (lat > 3.86) & (lat < 53.55))


def _as_given(lon, lat, out_lon: np.ndarray, out_lat: np.ndarray):
    if np.ndim(lon) == 0 and np.ndim(lat) == 0:
        return float(out_lon), float(out_lat)
    return out_lon, out_lat


def wgs84_to_gcj02(lon, lat):
    """WGS84 → GCJ-02 (the published obfuscation formula; China only)."""
    wgs_lon = np.asarray(lon, dtype=float)
    wgs_lat = np.asarray(lat, dtype=float)
    dlon, dlat = _offset(wgs_lon, wgs_lat)
    outside = outside_china(wgs_lon, wgs_lat)
    return _as_given(
        lon, lat, np.where(outside, wgs_lon, wgs_lon + dlon), np.where(outside, wgs_lat, wgs_lat + dlat)
    )


def gcj02_to_wgs84(lon, lat, *, iterations: int = 8):
    """GCJ-02 → WGS84: the WGS84 point whose GCJ-02 image is the given point."""
    gcj_lon = np.asarray(lon, dtype=float)
    gcj_lat = np.asarray(lat, dtype=float)
    wgs_lon, wgs_lat = gcj_lon.copy(), gcj_lat.copy()
    for _ in range(iterations):
        shifted_lon, shifted_lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
        wgs_lon = wgs_lon - (shifted_lon - gcj_lon)
        wgs_lat = wgs_lat - (shifted_lat - gcj_lat)
    return _as_given(lon, lat, wgs_lon, wgs_lat)
