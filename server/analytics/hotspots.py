"""Hot and cold spots beyond chance (docs/analytics.md, "Hotspots"): Getis-Ord Gi* or Local
Moran's I per unit (the county's grids at one level, or H3 cells), pseudo p-values from
conditional permutations, and a Benjamini-Hochberg false-discovery-rate decision over all units.

The statistics are PySAL's (``esda``, ``libpysal``) and scipy's; this module gathers the units
(every unit of the county, zeros included: leaving them out biases Gi* upwards), their counts
and their neighbours, and reads the results into classes. The counts are one SQLAlchemy
statement with the analytics' optional filters; the neighbours are queen contiguity of the
stored polygons, computed in PostGIS (``sql/unit_neighbours.sql``), or H3's ring of 1.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import h3
import numpy as np
import psycopg
from psycopg.rows import tuple_row
from sqlalchemy import func, select

from server.analytics.period import Period
from server.analytics.response import Selection, filtered_source
from server.analytics.tables import fetch, incidents
from server.auth.scope import SEES_ALL
from server.errors import InvalidInput

GRID_UNITS = ("grid", "village", "township")
H3_RESOLUTIONS = range(6, 10)
# Confidence bins of the significant units, by their FDR-adjusted p-value.
CONFIDENCE = ((0.01, "99"), (0.05, "95"), (0.10, "90"))
# esda's quadrants of Local Moran's I.
QUADRANTS = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}
# A fixed seed: the same data and parameters give the same answer (and the cache stays exact).
SEED = 2184
SIMPLIFY = {"grid": 0.0002, "village": 0.0005, "township": 0.001}  # degrees: outlines for the map
NEIGHBOURS_SQL = (Path(__file__).parent / "sql" / "unit_neighbours.sql").read_text(encoding="utf-8")


@dataclass(frozen=True)
class HotspotRequest:
    unit: str
    resolution: int | None
    period: Period
    category: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    measure: str = "count"
    method: str = "gi_star"
    permutations: int = 999
    alpha: float = 0.05

    def key(self) -> tuple:
        period = self.period
        return (self.unit, self.resolution, period.start, period.end, self.category, self.status,
                self.measure, self.method, self.permutations, self.alpha)  # fmt: skip


@dataclass
class Units:
    codes: list[str]
    names: list[str | None]
    households: np.ndarray  # float, NaN where unknown
    counts: np.ndarray
    neighbours: dict[int, list[int]]  # index -> indexes, without the unit itself
    geometries: list[dict]
    weights: str


class HotspotCache:
    """Answers kept per worker, keyed by their parameters and the data version they read (a
    filing or a workflow change moves the change log, so the next request recomputes)."""

    def __init__(self, size: int = 32):
        self.size = size
        self._answers: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, compute):
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
        answer = compute()
        with self._lock:
            self._answers[key] = answer
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
        return answer


def data_version(conn: psycopg.Connection) -> tuple:
    """What an answer depends on: the change log (folded and queued changes) and the grids (any
    row written changes the sum of their row versions' transaction ids)."""
    cursor = conn.cursor(row_factory=tuple_row)
    return cursor.execute(
        """SELECT (SELECT coalesce(max(id), 0) FROM tiles.change_events),
                  (SELECT coalesce(max(id), 0) FROM tiles.pending_changes),
                  count(*), coalesce(sum(xmin::text::bigint), 0)
             FROM grids"""
    ).fetchone()


def hotspots(
    conn: psycopg.Connection, request: HotspotRequest, *, cache: HotspotCache, now: datetime
) -> bytes:
    """The GeoJSON answer of ``GET /api/v1/analytics/hotspots``, encoded: kept as bytes, a
    repeat costs no second encoding of a few megabytes."""
    if request.unit == "h3" and request.measure == "per_100_households":
        raise InvalidInput(
            "per_100_households needs grid units (H3 cells have no households)", field="measure"
        )
    version = data_version(conn)
    return cache.get(
        (request.key(), version),
        lambda: json.dumps(_compute(conn, request, version, now, cache), ensure_ascii=False).encode(),
    )


def _compute(
    conn: psycopg.Connection, request: HotspotRequest, version: tuple, now: datetime, cache: HotspotCache
) -> dict:
    if request.unit == "h3":
        units = _h3_units(conn, request)
    else:
        outlines = cache.get(
            ("outlines", request.unit, version[2:]), lambda: grid_outlines(conn, request.unit)
        )
        units = _grid_units(conn, request, outlines)
    values = units.counts.astype(float)
    kept = np.ones(len(values), dtype=bool)
    if request.measure == "per_100_households":
        kept = units.households > 0
        values = np.where(kept, 100.0 * units.counts / np.where(kept, units.households, 1.0), np.nan)
    statistics = local_statistics(
        values[kept],
        _reindexed(units.neighbours, kept),
        method=request.method,
        permutations=request.permutations,
        alpha=request.alpha,
    )
    features = []
    rows = iter(range(int(kept.sum())))
    for index, code in enumerate(units.codes):
        figures = dict.fromkeys(("gi_z", "local_i", "p", "q"), None) | {"significant": False, "class": "none"}
        if kept[index]:
            figures = statistics[next(rows)]
        features.append(
            {
                "type": "Feature",
                "id": code,
                "geometry": units.geometries[index],
                "properties": {
                    "unit": code,
                    "name": units.names[index],
                    "count": int(units.counts[index]),
                    "households": None if np.isnan(units.households[index]) else int(units.households[index]),
                    "value": None if np.isnan(values[index]) else round(float(values[index]), 4),
                    **figures,
                },
            }
        )
    period = request.period
    return {
        "type": "FeatureCollection",
        "features": features,
        "parameters": {
            "unit": request.unit,
            "resolution": request.resolution,
            **period.describe(),
            "category": list(request.category),
            "status": list(request.status),
            "measure": request.measure,
            "method": request.method,
            "permutations": request.permutations,
            "alpha": request.alpha,
        },
        "weights": {
            "kind": units.weights,
            "binary": True,
            "self_included": request.method == "gi_star",
            "islands": sum(1 for i in range(len(units.codes)) if not units.neighbours.get(i)),
        },
        "units": len(units.codes),
        "left_out": [code for code, keep in zip(units.codes, kept, strict=True) if not keep],
        "computed_at": now.isoformat(timespec="seconds"),
        "data_version": described_version(version),
    }


def described_version(version: tuple) -> dict:
    """A data version as an answer shows it."""
    return {"change_log": version[0], "queued": version[1], "grids": f"{version[2]}:{version[3]}"}


def local_statistics(
    values: np.ndarray, neighbours: dict[int, list[int]], *, method: str, permutations: int, alpha: float
) -> list[dict]:
    """Per unit: Gi* z (``gi_z``) or Local Moran's I (``local_i``), the pseudo p-value, the
    Benjamini-Hochberg adjusted one (``q``), ``significant`` (q <= alpha) and the class."""
    count = len(values)
    if count < 3 or np.nanstd(values) == 0:
        # No variation: nothing can stand out (esda would divide by zero).
        empty = {"gi_z": None, "local_i": None, "p": None, "q": None, "significant": False, "class": "none"}
        return [dict(empty) for _ in range(count)]
    # esda (3 s) and scipy.stats (1 s) are imported when a leader asks, not when a worker starts.
    import esda
    from libpysal.weights import W
    from scipy.stats import false_discovery_control

    weights = W({i: neighbours.get(i, []) for i in range(count)}, silence_warnings=True)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # Islands (units without neighbours) have no local statistic; esda warns and gives NaN.
        warnings.simplefilter("ignore", RuntimeWarning)
        # esda announces that its pseudo p-value will become two-sided; G_Local and Moran_Local
        # do not take the choice yet. We keep the "directed" one (in the direction of the
        # observed value): its smallest is 1/(permutations + 1), half the two-sided one, which a
        # false-discovery correction over thousands of units needs.
        warnings.filterwarnings("ignore", "The alternative hypothesis", DeprecationWarning)
        if method == "gi_star":
            result = esda.G_Local(
                values,
                weights,
                transform="B",
                star=True,
                permutations=permutations,
                seed=SEED,
                n_jobs=1,
            )
            statistic, p = result.Zs, result.p_sim
        else:
            result = esda.Moran_Local(
                values,
                weights,
                transformation="r",
                permutations=permutations,
                seed=SEED,
                n_jobs=1,
            )
            statistic, p = result.Is, result.p_sim
    p = np.where(np.isfinite(statistic), p, 1.0)
    q = false_discovery_control(p, method="bh")
    significant = q <= alpha
    out = []
    for i in range(count):
        if method == "gi_star":
            spot = _spot(statistic[i], q[i]) if significant[i] else "none"
            figures = {"gi_z": _number(statistic[i]), "local_i": None}
        else:
            spot = QUADRANTS[int(result.q[i])] if significant[i] else "none"
            figures = {"gi_z": None, "local_i": _number(statistic[i])}
        out.append(
            figures | {"p": float(p[i]), "q": float(q[i]), "significant": bool(significant[i]), "class": spot}
        )
    return out


def _spot(z: float, q: float) -> str:
    """hot_99 … cold_90: the side of the z-score and the confidence of the adjusted p-value."""
    level = next((level for limit, level in CONFIDENCE if q <= limit), None)
    if level is None:
        return "none"
    return ("hot_" if z > 0 else "cold_") + level


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _reindexed(neighbours: dict[int, list[int]], kept: np.ndarray) -> dict[int, list[int]]:
    """The neighbours among the kept units, numbered as they are kept."""
    position = np.cumsum(kept) - 1
    return {
        int(position[i]): [int(position[j]) for j in around if kept[j]]
        for i, around in neighbours.items()
        if kept[i]
    }


def filtered_incidents(conn: psycopg.Connection, request: HotspotRequest, by: str) -> tuple:
    """The incidents a spot analysis counts, joined to their unit at level ``by``: the source,
    the unit expression and the conditions (period of report, categories, statuses)."""
    selection = Selection(by=by, period=request.period, scope=SEES_ALL, category=request.category)
    _, source, unit_of, conditions = filtered_source(conn, selection)
    i = incidents.c
    period = request.period
    conditions = [*conditions, i.reported_at >= period.starts_at, i.reported_at < period.ends_at]
    if request.status:
        conditions.append(i.status.in_(request.status))
    return source, unit_of, conditions


def _grid_units(conn: psycopg.Connection, request: HotspotRequest, outlines: dict) -> Units:
    source, unit_of, conditions = filtered_incidents(conn, request, request.unit)
    statement = select(unit_of.label("unit"), func.count().label("n")).select_from(source).where(*conditions)
    counts = {row["unit"]: row["n"] for row in fetch(conn, statement.group_by(unit_of))}
    return Units(
        codes=outlines["codes"],
        names=outlines["names"],
        households=outlines["households"],
        counts=np.array([counts.get(unit_id, 0) for unit_id in outlines["ids"]], dtype=np.int64),
        neighbours=outlines["neighbours"],
        geometries=outlines["geometries"],
        weights="queen",
    )


def grid_outlines(conn: psycopg.Connection, level: str) -> dict:
    """The units of a grid level with what does not depend on the incidents: households (of the
    finest grids inside), simplified outlines, and queen neighbours (a quarter of a second for
    2,184 grids, so kept while the grids stay the same)."""
    rows = conn.execute(
        """SELECT u.id, u.code, u.name_zh AS name,
                  (SELECT sum(g.households) FROM grids g
                    WHERE g.level = 'grid' AND g.path <@ u.path) AS households,
                  ST_AsGeoJSON(ST_SimplifyPreserveTopology(u.geom, %(simplify)s), 5)::json AS geometry
             FROM grids u WHERE u.level = %(level)s ORDER BY u.code""",
        {"level": level, "simplify": SIMPLIFY[level]},
    ).fetchall()
    index = {row["id"]: n for n, row in enumerate(rows)}
    neighbours: dict[int, list[int]] = {n: [] for n in range(len(rows))}
    for a, b in conn.cursor(row_factory=tuple_row).execute(NEIGHBOURS_SQL, {"level": level}):
        neighbours[index[a]].append(index[b])
        neighbours[index[b]].append(index[a])
    return {
        "ids": [row["id"] for row in rows],
        "codes": [row["code"] for row in rows],
        "names": [row["name"] for row in rows],
        "households": np.array(
            [np.nan if row["households"] is None else float(row["households"]) for row in rows]
        ),
        "neighbours": neighbours,
        "geometries": [row["geometry"] for row in rows],
    }


def _h3_units(conn: psycopg.Connection, request: HotspotRequest) -> Units:
    counted: dict[str, int] = {}
    for point in incident_points(conn, request):
        cell = h3.latlng_to_cell(point["lat"], point["lon"], request.resolution)
        counted[cell] = counted.get(cell, 0) + 1
    cells = h3_cells(conn, request.resolution, set(counted))
    return Units(
        codes=cells["codes"],
        names=cells["names"],
        households=np.full(len(cells["codes"]), np.nan),
        counts=np.array([counted.get(cell, 0) for cell in cells["codes"]], dtype=np.int64),
        neighbours=cells["neighbours"],
        geometries=cells["geometries"],
        weights="h3_ring_1",
    )


def incident_points(conn: psycopg.Connection, request: HotspotRequest, *columns) -> list[dict]:
    """The filtered incidents of the period as lon, lat (and ``columns``)."""
    if request.resolution not in H3_RESOLUTIONS:
        raise InvalidInput("resolution must be 6 to 9 for unit=h3", field="resolution")
    source, _, conditions = filtered_incidents(conn, request, "grid")
    i = incidents.c
    statement = select(func.ST_X(i.geom).label("lon"), func.ST_Y(i.geom).label("lat"), *columns)
    return fetch(conn, statement.select_from(source).where(*conditions))


def h3_cells(conn: psycopg.Connection, resolution: int, counted: set[str]) -> dict:
    """The H3 cells of the county (centre inside it) and any cell holding an incident, with their
    ring-1 neighbours among them and their outlines."""
    county = conn.execute(
        "SELECT ST_AsGeoJSON(ST_Union(geom))::json AS geometry FROM grids WHERE level = 'township'"
    ).fetchone()["geometry"]
    cells = sorted(set(h3.geo_to_cells(county, resolution)) | counted)
    index = {cell: n for n, cell in enumerate(cells)}
    neighbours = {
        n: [index[other] for other in h3.grid_disk(cell, 1) if other != cell and other in index]
        for n, cell in enumerate(cells)
    }
    return {
        "codes": cells,
        "names": [None] * len(cells),
        "neighbours": neighbours,
        "geometries": [_hexagon(cell) for cell in cells],
    }


def _hexagon(cell: str) -> dict:
    ring = [[round(lng, 6), round(lat, 6)] for lat, lng in h3.cell_to_boundary(cell)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
