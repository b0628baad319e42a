"""GCJ-02 ("Mars coordinates", used by Gaode/Tencent web maps) to and from WGS84.

This is the public, widely re-implemented obfuscation formula (as published in the
eviltransform and coordtransform projects), written here from its description: a smooth offset
of a few hundred metres inside China, none outside. WGS84 → GCJ-02 is the formula itself; the
inverse has no closed form, so ``gcj02_to_wgs84`` iterates the forward formula until the point
maps back to within ~1e-9° (about 0.1 mm).
"""

from __future__ import annotations

import math

_SEMI_MAJOR = 6378245.0  # Krasovsky 1940 ellipsoid, as the formula uses
_ECCENTRICITY_SQ = 0.00669342162296594323


def outside_china(lon: float, lat: float) -> bool:
    """The rough rectangle where the offset applies."""
    return not (73.66 < lon < 135.05 and 3.86 < lat < 53.55)


def _offset_lat(x: float, y: float) -> float:
    value = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    value += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    value += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    value += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return value


def _offset_lon(x: float, y: float) -> float:
    value = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    value += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    value += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    value += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return value


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if outside_china(lon, lat):
        return lon, lat
    d_lat = _offset_lat(lon - 105.0, lat - 35.0)
    d_lon = _offset_lon(lon - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * math.pi
    magic = 1 - _ECCENTRICITY_SQ * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_SEMI_MAJOR * (1 - _ECCENTRICITY_SQ)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_SEMI_MAJOR / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lon + d_lon, lat + d_lat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    if outside_china(lon, lat):
        return lon, lat
    guess_lon, guess_lat = lon, lat
    for _ in range(30):  # converges in a handful of steps: the offset changes slowly
        shifted_lon, shifted_lat = wgs84_to_gcj02(guess_lon, guess_lat)
        error_lon, error_lat = shifted_lon - lon, shifted_lat - lat
        if abs(error_lon) < 1e-10 and abs(error_lat) < 1e-10:
            break
        guess_lon, guess_lat = guess_lon - error_lon, guess_lat - error_lat
    return guess_lon, guess_lat
