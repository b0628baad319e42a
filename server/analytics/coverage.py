"""Coverage gaps (docs/analytics.md): grids without a member, grids nobody patrolled in the
window, and "quiet" grids that are patrolled yet report far fewer problems than their township
would lead one to expect; and the holes the last grid import left in the partition.

The query is plain SQL (``sql/coverage_grids.sql``): its shape is fixed, with no optional parts
to compose. The quiet test is a Poisson lower tail from scipy (``scipy.special.pdtr``, which is
what ``scipy.stats.poisson.cdf`` computes, without importing ``scipy.stats``: 0.8 s of every
worker's start).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from scipy.special import pdtr

NO_MEMBER, UNPATROLLED, QUIET, OK = "no_member", "unpatrolled", "quiet", "ok"
STATUSES = (NO_MEMBER, UNPATROLLED, QUIET, OK)
LEVELS = ("grid", "village", "township")
# Quiet: so few reports that the township's rate per household makes the count this unlikely.
QUIET_P = 0.05
# A village or township is "ok" while fewer than this share of its grids has a gap; otherwise it
# takes the status most of its troubled grids have.
AREA_GAP_SHARE = 0.10
GRIDS_SQL = (Path(__file__).parent / "sql" / "coverage_grids.sql").read_text(encoding="utf-8")


def grid_status(*, has_member: bool, patrols: int, reports: int, expected: float) -> tuple[str, float | None]:
    """A grid's status and, when patrolled, the chance of so few reports at its township's rate."""
    if not has_member:
        return NO_MEMBER, None
    if patrols == 0:
        return UNPATROLLED, None
    if expected <= 0:
        return OK, None
    chance = float(pdtr(reports, expected))
    return (QUIET if chance < QUIET_P else OK), chance


def coverage(
    conn: psycopg.Connection,
    *,
    days: int,
    level: str,
    now: datetime,
    members_visible: bool,
    simplify: float | None,
) -> dict:
    """A FeatureCollection with one feature per unit of ``level``, the counts per status and the
    partition's gaps; without outlines when ``simplify`` is None (counts only)."""
    since = now - timedelta(days=days)
    rows = conn.execute(GRIDS_SQL, {"since": since, "until": now, "simplify": simplify}).fetchall()
    township_reports: Counter = Counter()
    township_households: Counter = Counter()
    for row in rows:
        township_reports[row["township_id"]] += row["reports"]
        township_households[row["township_id"]] += row["households"]

    grids = []
    for row in rows:
        homes = township_households[row["township_id"]]
        rate = township_reports[row["township_id"]] / homes if homes else 0.0
        expected = rate * row["households"]
        status, chance = grid_status(
            has_member=row["has_member"], patrols=row["patrols"], reports=row["reports"], expected=expected
        )
        last = row["last_patrol_at"]
        grids.append(
            {
                "id": row["id"],
                "township_id": row["township_id"],
                "village_id": row["village_id"],
                "geometry": row["geometry"],
                "properties": {
                    "unit": row["code"],
                    "name": row["name_zh"],
                    "name_en": row["name_en"],
                    "households": row["households"],
                    "has_member": row["has_member"],
                    "member": row["member"] if members_visible else None,
                    "patrolled": row["patrols"] > 0,
                    "last_patrol_at": last.isoformat() if last else None,
                    "days_since_patrol": (now - last).days if last else None,
                    "patrols": row["patrols"],
                    "reports": row["reports"],
                    "expected_reports": round(expected, 2),
                    "quiet_chance": None if chance is None else float(f"{chance:.4g}"),
                    "status": status,
                },
            }
        )
    features = grids if level == "grid" else _areas(conn, grids, level=level, now=now, simplify=simplify)
    totals = Counter(feature["properties"]["status"] for feature in features)
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": f["id"], "geometry": f["geometry"], "properties": f["properties"]}
            for f in features
        ],
        "totals": {status: totals.get(status, 0) for status in STATUSES},
        "gaps": partition_gaps(conn),
        "parameters": {"days": days, "level": level, "as_of": now.isoformat(timespec="seconds")},
    }


def _areas(
    conn: psycopg.Connection, grids: list[dict], *, level: str, now: datetime, simplify: float
) -> list:
    """Villages or townships, each with the statuses of its grids."""
    key = "village_id" if level == "village" else "township_id"
    below = defaultdict(list)
    for grid in grids:
        below[grid[key]].append(grid["properties"])
    units = conn.execute(
        """SELECT id, code, name_zh, name_en,
                  ST_AsGeoJSON(CASE WHEN %(simplify)s > 0 THEN ST_SimplifyPreserveTopology(geom, %(simplify)s)
                                    ELSE geom END, 6)::json AS geometry
             FROM grids WHERE level = %(level)s ORDER BY code""",
        {"level": level, "simplify": simplify},
    ).fetchall()
    features = []
    for unit in units:
        children = below.get(unit["id"], [])
        counts = Counter(child["status"] for child in children)
        troubled = len(children) - counts[OK]
        status = OK
        if children and troubled / len(children) >= AREA_GAP_SHARE:
            status = max((NO_MEMBER, UNPATROLLED, QUIET), key=lambda s: (counts[s], -STATUSES.index(s)))
        last = max((c["last_patrol_at"] for c in children if c["last_patrol_at"]), default=None)
        features.append(
            {
                "id": unit["id"],
                "geometry": unit["geometry"],
                "properties": {
                    "unit": unit["code"],
                    "name": unit["name_zh"],
                    "name_en": unit["name_en"],
                    "households": sum(c["households"] for c in children),
                    "grids": len(children),
                    "has_member": bool(children) and all(c["has_member"] for c in children),
                    "patrolled": any(c["patrolled"] for c in children),
                    "last_patrol_at": last,
                    "days_since_patrol": (now - datetime.fromisoformat(last)).days if last else None,
                    "patrols": sum(c["patrols"] for c in children),
                    "reports": sum(c["reports"] for c in children),
                    "grids_by_status": {s: counts.get(s, 0) for s in STATUSES},
                    "status": status,
                },
            }
        )
    return features


def partition_gaps(conn: psycopg.Connection) -> list[dict]:
    """The holes between sibling grids that the last grid import accepted, largest first."""
    rows = conn.execute(
        """SELECT pg.parent_code AS parent, p.name_zh AS parent_name, pg.bordering,
                  round(pg.area_m2)::bigint AS area_m2, pg.lon, pg.lat, pg.found_at
             FROM partition_gaps pg LEFT JOIN grids p ON p.code = pg.parent_code
            ORDER BY pg.area_m2 DESC"""
    ).fetchall()
    return [{**row, "found_at": row["found_at"].isoformat()} for row in rows]
