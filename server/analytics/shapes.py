"""Outlines of the units the analytics maps colour (simplified: a county's 2,184 grids draw in
a browser without a basemap)."""

from __future__ import annotations

import psycopg

LEVEL_BELOW = {"county": "township", "township": "village", "village": "grid"}


def unit_shapes(conn: psycopg.Connection, *, level: str, parent: str | None, simplify: float = 2e-4) -> dict:
    """``{code: {"geometry", "name", "name_en", "level"}}`` of the grids of ``level`` (inside
    ``parent`` when given)."""
    rows = conn.execute(
        """SELECT g.code, g.name_zh, g.name_en, g.level,
                  ST_AsGeoJSON(ST_SimplifyPreserveTopology(g.geom, %(simplify)s), 5)::json AS geometry
             FROM grids g
            WHERE g.level = %(level)s
              AND (%(parent)s::text IS NULL
                   OR g.path <@ (SELECT p.path FROM grids p WHERE p.code = %(parent)s))""",
        {"level": level, "parent": parent, "simplify": simplify},
    ).fetchall()
    return {row["code"]: row for row in rows}


def trail(conn: psycopg.Connection, code: str | None) -> list[dict]:
    """The grid and its ancestors below the county, county side first (a breadcrumb)."""
    if code is None:
        return []
    return conn.execute(
        """SELECT a.code, a.name_zh, a.name_en, a.level FROM grids g JOIN grids a ON a.path @> g.path
            WHERE g.code = %s AND a.level <> 'county' ORDER BY nlevel(a.path)""",
        [code],
    ).fetchall()
