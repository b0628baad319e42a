"""Check that imported grids fit the tree they join: inside their parent, no overlaps, no gaps.

A county's grids must cover it "without a blank and without a dead angle": every child inside its
parent, siblings that do not overlap, and siblings that together fill their parent. The checks run
in PostGIS on the staged grids (the ``grid_import`` table of server/importers/grids.py) in one
set-based query. Siblings are the children of one parent: the imported ones and those already in
the database, so a branch imported into an existing tree is checked against its new neighbours.

**Digitising noise is tolerated.** Polygons drawn or reprojected separately rarely share every
vertex exactly, which leaves slivers of a few square centimetres along shared edges. A piece of
area (the part of a child outside its parent, the overlap of two siblings, one gap) is noise when
it is at most ``NOISE_M2`` (1 m²) or at most ``NOISE_SHARE`` (0.1 %) of the smallest grid
involved (the child; the smaller sibling; the smallest sibling bordering the gap).

Grids are measured on the WGS84 spheroid (``geography``). The pieces are not: GEOS cuts them in
plain longitude/latitude, where a long edge A-B of one grid and a chain A-C-B of its neighbour with
C on the line leave a sliver of no area; read as ``geography``, A-B becomes a geodesic that bows
away from C by up to a metre over 10 km, and the sliver measures thousands of m². A piece's area
is therefore its area in square degrees times the size of a square degree (meridian and parallel
arc lengths on WGS84) at its centroid's latitude.

**Errors and warnings.** A child outside its parent and overlapping siblings are errors: a point
would be counted in a township it is not in, or in two grids at once, and the import is refused.
A gap is a warning, because a parent's children may arrive in several files (one township's
villages at a time); with ``strict`` it is an error too.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg.rows import dict_row

from server.importers.problems import Problem, Problems

NOISE_M2 = 1.0
NOISE_SHARE = 0.001
NAMED_NEIGHBOURS = 4  # a gap's message names this many bordering grids, then counts the rest

# Every piece of area that breaks the partition and is larger than noise: its kind, the grid it is
# reported on, the other grids involved, its area and a point inside it.
FINDINGS = """
WITH parent AS (
    SELECT code, geom FROM grid_import WHERE code IN (SELECT parent_code FROM grid_import)
    UNION ALL
    SELECT code, geom FROM grids WHERE code IN (SELECT parent_code FROM grid_import)
),
child AS MATERIALIZED (
    SELECT code, parent_code, geom, true AS imported, ST_Area(geom::geography) AS area
      FROM grid_import
     WHERE parent_code IS NOT NULL
    UNION ALL
    SELECT g.code, p.code, g.geom, false, ST_Area(g.geom::geography)
      FROM grids g
      JOIN grids p ON p.id = g.parent_id
     WHERE p.code IN (SELECT parent_code FROM grid_import)
),
piece AS (
    SELECT 'outside' AS kind, c.code AS grid, ARRAY[p.code] AS others, c.area AS smallest,
           ST_Difference(c.geom, p.geom) AS geom
      FROM child c
      JOIN parent p ON p.code = c.parent_code
     WHERE c.imported AND NOT ST_CoveredBy(c.geom, p.geom)
    UNION ALL
    SELECT 'overlap', a.code, ARRAY[b.code], least(a.area, b.area), ST_Intersection(a.geom, b.geom)
      FROM child a
      JOIN child b ON b.parent_code = a.parent_code AND b.geom && a.geom
     WHERE a.imported AND (a.code < b.code OR NOT b.imported)
       AND ST_Relate(a.geom, b.geom, '2********')
    UNION ALL
    SELECT 'gap', p.code, NULL, NULL, part.geom
      FROM parent p
      JOIN (SELECT parent_code, ST_Union(geom) AS geom FROM child GROUP BY parent_code) children
        ON children.parent_code = p.code
     CROSS JOIN LATERAL ST_Dump(ST_Difference(p.geom, children.geom)) part
),
measured AS (
    SELECT kind, grid, others, smallest, geom,
           ST_Area(geom) * (111132.954 - 559.822 * cos(2 * lat) + 1.175 * cos(4 * lat))
                         * (111412.84 * cos(lat) - 93.5 * cos(3 * lat)) AS area
      FROM (SELECT kind, grid, others, smallest, ST_CollectionExtract(geom, 3) AS geom,
                   radians(ST_Y(ST_Centroid(geom))) AS lat
              FROM piece) p
)
SELECT m.kind, m.grid, coalesce(m.others, neighbours.codes) AS others, m.area,
       ST_X(ST_PointOnSurface(m.geom)) AS lon, ST_Y(ST_PointOnSurface(m.geom)) AS lat
  FROM measured m
  LEFT JOIN LATERAL (
      SELECT array_agg(c.code ORDER BY c.code) AS codes, min(c.area) AS smallest
        FROM child c
       WHERE m.kind = 'gap' AND c.parent_code = m.grid AND c.geom && m.geom AND ST_Intersects(c.geom, m.geom)
  ) neighbours ON true
 WHERE m.area > %(noise_m2)s
   AND m.area > %(noise_share)s * coalesce(m.smallest, neighbours.smallest, 0)
 ORDER BY m.grid, m.kind, others
"""


def check_topology(
    conn: psycopg.Connection, *, label: Callable[[str], str], problems: Problems, strict: bool
) -> list[Problem]:
    """Add every misplaced child and overlap (and with ``strict`` every gap) to ``problems``;
    return the gaps that are only warnings. ``label`` names a grid by its code in messages."""
    warnings = []
    with conn.cursor(row_factory=dict_row) as cursor:
        findings = cursor.execute(FINDINGS, {"noise_m2": NOISE_M2, "noise_share": NOISE_SHARE}).fetchall()
    if not strict:
        _record_gaps(conn, [finding for finding in findings if finding["kind"] == "gap"])
    for finding in findings:
        area, around = _square_metres(finding["area"]), f"({finding['lon']:.5f}, {finding['lat']:.5f})"
        others = [label(code) for code in finding["others"] or []]
        if finding["kind"] == "outside":
            problems.add(
                label(finding["grid"]),
                "geometry",
                f"有 {area} 在上级 {others[0]} 之外，位于 {around} 附近 / "
                f"{area} of it lies outside its parent {others[0]}, around {around}",
            )
        elif finding["kind"] == "overlap":
            problems.add(
                label(finding["grid"]),
                "geometry",
                f"与 {others[0]} 重叠 {area}，位于 {around} 附近 / "
                f"overlaps {others[0]} by {area}, around {around}",
            )
        else:
            bordering = ", ".join(others[:NAMED_NEIGHBOURS])
            if len(others) > NAMED_NEIGHBOURS:
                bordering += f" … (+{len(others) - NAMED_NEIGHBOURS})"
            beside = f", beside {bordering}" if bordering else ", where it has no child"
            gap = Problem(
                label(finding["grid"]),
                "geometry",
                f"下级网格之间有 {area} 的空隙，位于 {around} 附近 / "
                f"its children leave a gap of {area} around {around}{beside}",
            )
            if strict:
                problems.add(gap.where, gap.field, gap.reason)
            else:
                warnings.append(gap)
    return warnings


def _record_gaps(conn: psycopg.Connection, gaps: list[dict]) -> None:
    """Keep the accepted gaps for the coverage analytics, replacing those the checked parents
    had before (a later import that fills a gap removes it)."""
    conn.execute("DELETE FROM partition_gaps WHERE parent_code IN (SELECT parent_code FROM grid_import)")
    with conn.cursor() as cursor:
        cursor.executemany(
            """INSERT INTO partition_gaps (parent_code, bordering, area_m2, lon, lat)
               VALUES (%(grid)s, coalesce(%(others)s::text[], '{}'), %(area)s, %(lon)s, %(lat)s)""",
            gaps,
        )


def _square_metres(area: float) -> str:
    if area >= 1_000_000:
        return f"{area / 1_000_000:,.2f} km²"
    return f"{area:,.0f} m²"
