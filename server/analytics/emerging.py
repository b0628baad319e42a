"""Emerging hot and cold spots (docs/analytics.md, "Emerging hotspots"): Gi* per unit and time
slice over the space-time cube, a Mann-Kendall trend of each unit's z-scores, and the pattern
(new, consecutive, intensifying, persistent, diminishing, sporadic, oscillating, historical; hot
or cold; or none) by the rules of ../shared/EMERGING_HOTSPOTS.md, section 1.

No open-source Python library ships this analysis. The space-time Gi* is the Getis-Ord z with
binary weights, vectorised over the cube with scipy's sparse matrices (tests check it against
``esda.G_Local`` on the same neighbours); the bins' p-values are scipy's normal tail with a
Benjamini-Hochberg decision over all bins; Mann-Kendall is written here with tie correction and
continuity correction (pymannkendall's "original test" loops in Python per series).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import h3
import numpy as np
import psycopg
from sqlalchemy import func, select

from server.analytics import hotspots
from server.analytics.period import Period, add_months
from server.analytics.tables import fetch, incidents
from server.errors import InvalidInput

MIN_SLICES = 10  # below 10 slices "at least 90 %" would mean every slice
HOT, COLD, QUIET = "H", "C", "."


@dataclass(frozen=True)
class EmergingRequest:
    base: hotspots.HotspotRequest  # unit, resolution, period, filters, alpha (method and permutations unused)
    slice: str = "month"

    def key(self) -> tuple:
        return ("emerging", self.slice, *self.base.key())


def slice_starts(period: Period, slice_: str, today: date) -> list[date]:
    """The complete slices of the period, oldest first: months or ISO weeks (Monday), never the
    running one (a half-filled slice looks like a collapse)."""
    if slice_ == "month":
        first = period.start if period.start.day == 1 else add_months(period.start.replace(day=1), 1)
        step = lambda day: add_months(day, 1)  # noqa: E731
        current = today.replace(day=1)
    else:
        first = period.start + timedelta(days=(7 - period.start.weekday()) % 7)
        step = lambda day: day + timedelta(days=7)  # noqa: E731
        current = today - timedelta(days=today.weekday())
    starts = []
    day = first
    while step(day) <= period.end and step(day) <= current:
        starts.append(day)
        day = step(day)
    return starts


def space_time_gi_star(counts: np.ndarray, adjacency) -> np.ndarray:
    """Gi* z of every bin (unit, slice): the unit and its neighbours at that slice and the one
    before, binary weights, the unit itself included; mean, population SD and N of the whole cube.
    z = (sum w x - mean W) / (s sqrt((N W - W^2) / (N - 1))), W the number of bins summed."""
    from scipy import sparse  # scipy's submodules are imported when asked: a worker starts sooner

    units, slices = counts.shape
    around = (adjacency + sparse.identity(units, format="csr")).tocsr()
    same_slice = around @ counts
    summed = same_slice.copy()
    summed[:, 1:] += same_slice[:, :-1]
    per_slice = np.asarray(around.sum(axis=1)).ravel()[:, None]
    weights = np.repeat(per_slice, slices, axis=1) * np.where(np.arange(slices) == 0, 1, 2)[None, :]
    n = counts.size
    mean, sd = counts.mean(), counts.std()
    if sd == 0:
        return np.zeros_like(counts, dtype=float)
    return (summed - mean * weights) / (sd * np.sqrt((n * weights - weights**2) / (n - 1)))


def mann_kendall(series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: S, Z (continuity-corrected) and the two-sided p of the Mann-Kendall trend test,
    with the variance corrected for ties."""
    from scipy.stats import norm

    n = series.shape[1]
    later = np.triu(np.ones((n, n), dtype=bool), k=1)
    s = np.sign(series[:, None, :] - series[:, :, None])[:, later].sum(axis=1)
    variance = np.empty(len(series))
    for row, values in enumerate(series):
        _, ties = np.unique(values, return_counts=True)
        variance[row] = (n * (n - 1) * (2 * n + 5) - (ties * (ties - 1) * (2 * ties + 5)).sum()) / 18
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, (s - 1) / np.sqrt(variance), np.where(s < 0, (s + 1) / np.sqrt(variance), 0.0))
    z = np.nan_to_num(z)
    return s, z, 2 * norm.sf(np.abs(z))


def pattern(classes: str, trend: str) -> str:
    """The emerging pattern of one unit from its slices' classes (oldest first; H, C or .) and
    the trend of its z-scores (up, down or none): the recommended rules, first split on the
    final slice."""
    n, last = len(classes), classes[-1]
    if last == QUIET:
        if 10 * classes.count(HOT) >= 9 * n:
            return "historical_hot"
        if 10 * classes.count(COLD) >= 9 * n:
            return "historical_cold"
        return "no_pattern"
    side, other = ("hot", COLD) if last == HOT else ("cold", HOT)
    stronger, weaker = ("up", "down") if last == HOT else ("down", "up")
    same = classes.count(last)
    if 10 * same >= 9 * n:
        kind = {stronger: "intensifying", weaker: "diminishing"}.get(trend, "persistent")
    elif classes.count(other):
        kind = "oscillating"
    else:
        run = n - len(classes.rstrip(last))
        kind = ("new" if run == 1 else "consecutive") if same == run else "sporadic"
    return f"{kind}_{side}"


def emerging_hotspots(
    conn: psycopg.Connection, request: EmergingRequest, *, cache: hotspots.HotspotCache, now: datetime
) -> bytes:
    """The GeoJSON answer of ``GET /api/v1/analytics/emerging-hotspots``, encoded and kept as
    the hotspots' are."""
    version = hotspots.data_version(conn)
    return cache.get(
        (request.key(), version),
        lambda: json.dumps(_compute(conn, request, version, now, cache), ensure_ascii=False).encode(),
    )


def _compute(conn, request: EmergingRequest, version: tuple, now: datetime, cache) -> dict:
    base = request.base
    starts = slice_starts(base.period, request.slice, now.astimezone(base.period.zone).date())
    if len(starts) < MIN_SLICES:
        raise InvalidInput(
            f"the period holds {len(starts)} complete {request.slice}s; at least {MIN_SLICES} are needed",
            field="from",
        )
    from scipy.stats import false_discovery_control, norm

    units, counts = _cube(conn, request, starts, version, cache)
    z = space_time_gi_star(counts, units["adjacency"])
    q = false_discovery_control(2 * norm.sf(np.abs(z)).ravel(), method="bh").reshape(z.shape)
    classes = np.where(q <= base.alpha, np.where(z > 0, HOT, COLD), QUIET)
    s, trend_z, trend_p = mann_kendall(z)
    trends = np.where(trend_p <= base.alpha, np.where(s > 0, "up", np.where(s < 0, "down", "none")), "none")
    features = []
    for n, code in enumerate(units["codes"]):
        row = "".join(classes[n])
        features.append(
            {
                "type": "Feature",
                "id": code,
                "geometry": units["geometries"][n],
                "properties": {
                    "unit": code,
                    "name": units["names"][n],
                    "count": int(counts[n].sum()),
                    "pattern": pattern(row, str(trends[n])),
                    "trend": str(trends[n]),
                    "trend_z": round(float(trend_z[n]), 4),
                    "trend_p": float(trend_p[n]),
                    "slice_classes": row,
                    "slice_z": [round(float(value), 3) for value in z[n]],
                    "slice_counts": [int(value) for value in counts[n]],
                },
            }
        )
    period = base.period
    return {
        "type": "FeatureCollection",
        "features": features,
        "parameters": {
            "unit": base.unit,
            "resolution": base.resolution,
            **period.describe(),
            "slice": request.slice,
            "category": list(base.category),
            "status": list(base.status),
            "alpha": base.alpha,
        },
        "slices": [day.isoformat() for day in starts],
        "weights": {"kind": units["weights"], "binary": True, "self_included": True, "time_steps": 1},
        "units": len(units["codes"]),
        "computed_at": now.isoformat(timespec="seconds"),
        "data_version": hotspots.described_version(version),
    }


def _cube(
    conn, request: EmergingRequest, starts: list[date], version: tuple, cache
) -> tuple[dict, np.ndarray]:
    """The units (codes, names, outlines, adjacency) and their counts per slice."""
    base = request.base
    period = Period.of(
        start=starts[0],
        end=_slice_end(starts[-1], request.slice),
        as_of=base.period.as_of,
        zone=base.period.zone,
    )
    i = incidents.c
    slice_of = func.date_trunc(request.slice, func.timezone(period.zone.key, i.reported_at))
    if base.unit == "h3":
        points = hotspots.incident_points(conn, replace(base, period=period), slice_of.label("slice"))
        located = [
            (h3.latlng_to_cell(p["lat"], p["lon"], base.resolution), p["slice"].date()) for p in points
        ]
        units = hotspots.h3_cells(conn, base.resolution, {cell for cell, _ in located})
        position = {cell: n for n, cell in enumerate(units["codes"])}
        counted = [(position[cell], day, 1) for cell, day in located]
        weights = "h3_ring_1"
    else:
        units = cache.get(
            ("outlines", base.unit, version[2:]), lambda: hotspots.grid_outlines(conn, base.unit)
        )
        source, unit_of, conditions = hotspots.filtered_incidents(
            conn, replace(base, period=period), base.unit
        )
        statement = (
            select(unit_of.label("unit"), slice_of.label("slice"), func.count().label("n"))
            .select_from(source)
            .where(*conditions)
            .group_by(unit_of, slice_of)
        )
        position = {unit_id: n for n, unit_id in enumerate(units["ids"])}
        counted = [(position[row["unit"]], row["slice"].date(), row["n"]) for row in fetch(conn, statement)]
        weights = "queen"
    from scipy import sparse

    index = {day: n for n, day in enumerate(starts)}
    size = len(units["codes"])
    counts = np.zeros((size, len(starts)))
    for unit, day, n in counted:
        counts[unit, index[day]] += n
    pairs = [(a, b) for a, around in units["neighbours"].items() for b in around]
    adjacency = sparse.csr_matrix(
        (np.ones(len(pairs)), ([a for a, _ in pairs], [b for _, b in pairs])), shape=(size, size)
    )
    return {**units, "adjacency": adjacency, "weights": weights}, counts


def _slice_end(start: date, slice_: str) -> date:
    return add_months(start, 1) if slice_ == "month" else start + timedelta(days=7)
