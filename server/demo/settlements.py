"""Synthetic settlements of the demo county: township seats, village centres and households.

Hongya's people live along the Qingyi River valley in the north-east; the south and west rise to
Mount Wawu. `ruggedness` (0 on the valley floor, 1 in the high mountains) is a smooth stand-in for
that terrain: settlements are dense where it is low, grids larger and emptier where it is high.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

KM_PER_DEGREE_LAT = 111.0
KM_PER_DEGREE_LON = 111.0 * np.cos(np.radians(29.7))

TOWNSHIP_COUNT = 13
HAMLET_COUNT = 135
COUNTY_SEAT_COMMUNITIES = 3


def ruggedness(lon, lat) -> np.ndarray:
    """0 = river plain around the county seat, 1 = high mountains in the south-west."""
    return np.clip(0.15 + (29.93 - np.asarray(lat)) * 1.6 + (103.40 - np.asarray(lon)) * 0.6, 0.0, 1.0)


def distance_km(points: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Distances (km) from each of `points` (n, 2) to one `origin` (2,): equirectangular, good to 0.1%."""
    dx = (points[:, 0] - origin[0]) * KM_PER_DEGREE_LON
    dy = (points[:, 1] - origin[1]) * KM_PER_DEGREE_LAT
    return np.hypot(dx, dy)


@dataclass(frozen=True)
class Settlements:
    seats: np.ndarray  # (13, 2) township seats; [0] is the county seat
    village_seeds: np.ndarray  # (V, 2) one point per village or community
    village_is_community: np.ndarray  # (V,) bool: an urban community at a township seat
    households: np.ndarray  # (H, 2) one point per household


def _points_inside(county, rng: np.random.Generator, count: int) -> np.ndarray:
    xmin, ymin, xmax, ymax = county.bounds
    points = np.empty((0, 2))
    while len(points) < count:
        batch = rng.uniform((xmin, ymin), (xmax, ymax), size=(count * 2, 2))
        points = np.vstack([points, batch[shapely.contains_xy(county, batch[:, 0], batch[:, 1])]])
    return points[:count]


def _spread_seats(candidates: np.ndarray, county_seat: np.ndarray) -> np.ndarray:
    """Township seats: greedy farthest-point picks, drawn towards the valley."""
    habitability = (1.0 - ruggedness(candidates[:, 0], candidates[:, 1])) ** 1.5 + 0.05
    seats = [county_seat]
    nearest = distance_km(candidates, county_seat)
    while len(seats) < TOWNSHIP_COUNT:
        pick = int(np.argmax(nearest * habitability**0.7))
        seats.append(candidates[pick])
        nearest = np.minimum(nearest, distance_km(candidates, candidates[pick]))
    return np.array(seats)


def _spread_hamlets(candidates: np.ndarray, seats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Village centres: weighted draws, kept at least 1.6 km apart and away from township seats."""
    weight = 1.0 - ruggedness(candidates[:, 0], candidates[:, 1]) + 0.12
    order = rng.choice(len(candidates), size=len(candidates), replace=False, p=weight / weight.sum())
    taken = list(seats)
    hamlets = []
    for index in order:
        point = candidates[index]
        if distance_km(np.array(taken), point).min() >= 1.6:
            taken.append(point)
            hamlets.append(point)
            if len(hamlets) == HAMLET_COUNT:
                break
    return np.array(hamlets)


def _cluster(rng: np.random.Generator, centre: np.ndarray, count: int, sigma_km: float) -> np.ndarray:
    offsets = rng.normal(0.0, sigma_km, size=(count, 2))
    return centre + offsets / (KM_PER_DEGREE_LON, KM_PER_DEGREE_LAT)


def generate_settlements(county, county_seat: tuple[float, float], rng: np.random.Generator) -> Settlements:
    candidates = _points_inside(county, rng, 20_000)
    # Seats keep ~4 km from the border: farthest-point picks would otherwise hug it.
    interior = shapely.contains_xy(county.buffer(-0.04), candidates[:, 0], candidates[:, 1])
    seats = _spread_seats(candidates[interior], np.array(county_seat))
    hamlets = _spread_hamlets(candidates, seats, rng)

    # The county seat holds several urban communities; every other seat one.
    angles = np.linspace(0, 2 * np.pi, COUNTY_SEAT_COMMUNITIES, endpoint=False)
    seat_communities = seats[0] + np.column_stack([np.cos(angles), np.sin(angles)]) * 1.1 / (
        KM_PER_DEGREE_LON,
        KM_PER_DEGREE_LAT,
    )
    communities = np.vstack([seat_communities, seats[1:]])

    groups = [_cluster(rng, seats[0], 21_000, 1.3)]
    for seat in seats[1:]:
        rough = float(ruggedness(seat[0], seat[1]))
        groups.append(_cluster(rng, seat, int(rng.integers(1_500, 3_500) * (1 - 0.5 * rough)), 0.55))
    for hamlet in hamlets:
        rough = float(ruggedness(hamlet[0], hamlet[1]))
        size = int(650 * (1.25 - 0.75 * rough) * rng.lognormal(0.0, 0.3))
        groups.append(_cluster(rng, hamlet, max(size, 160), 0.45 + 0.9 * rough))
    scattered = _points_inside(county, rng, 40_000)
    keep = rng.random(len(scattered)) < (1.0 - ruggedness(scattered[:, 0], scattered[:, 1])) * 0.3 + 0.03
    groups.append(scattered[keep])
    households = np.vstack(groups)
    households = households[shapely.contains_xy(county, households[:, 0], households[:, 1])]

    return Settlements(
        seats=seats,
        village_seeds=np.vstack([communities, hamlets]),
        village_is_community=np.arange(len(communities) + len(hamlets)) < len(communities),
        households=households,
    )
