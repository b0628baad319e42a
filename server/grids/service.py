"""The grid tree as the API reads it: lists with filters, one grid with ancestors and KPIs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from server.errors import InvalidInput, NotFound

LEVELS = ("county", "township", "village", "grid", "microgrid")


@dataclass(frozen=True)
class GridFilter:
    level: str | None = None
    parent: str | None = None  # a grid code: its direct children
    bbox: tuple[float, float, float, float] | None = None
    simplify: float | None = None  # tolerance in degrees for ST_SimplifyPreserveTopology


def _geometry(simplify: float | None) -> sql.Composable:
    if simplify is None:
        return sql.SQL("ST_AsGeoJSON(g.geom, 6)::json")
    return sql.SQL("ST_AsGeoJSON(ST_SimplifyPreserveTopology(g.geom, %(simplify)s), 6)::json")


_GRID_COLUMNS = sql.SQL(
    """g.code, g.level, p.code AS parent, g.name_zh, g.name_en, g.households, g.population,
       g.member_id IS NOT NULL AS has_member, m.display_name AS member_name"""
)
_GRID_FROM = sql.SQL(
    "grids g LEFT JOIN grids p ON p.id = g.parent_id LEFT JOIN users m ON m.id = g.member_id"
)


def list_grids(
    conn: psycopg.Connection, *, where: GridFilter, limit: int, after: str | None = None
) -> tuple[list[dict], str | None]:
    """Grids ordered by code, ``limit`` at a time; returns the page and the code to continue
    after (None on the last page)."""
    conditions: list[sql.Composable] = [sql.SQL("true")]
    params: dict = {"limit": limit + 1, "simplify": where.simplify}
    if where.level is not None:
        conditions.append(sql.SQL("g.level = %(level)s"))
        params["level"] = where.level
    if where.parent is not None:
        if conn.execute("SELECT 1 FROM grids WHERE code = %s", [where.parent]).fetchone() is None:
            raise InvalidInput(f"no grid with code {where.parent!r}", field="parent")
        conditions.append(sql.SQL("p.code = %(parent)s"))
        params["parent"] = where.parent
    if where.bbox is not None:
        conditions.append(
            sql.SQL(
                """g.geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)
                   AND ST_Intersects(g.geom, ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326))"""
            )
        )
        params.update(zip(("x0", "y0", "x1", "y1"), where.bbox, strict=True))
    if after is not None:
        conditions.append(sql.SQL("g.code > %(after)s"))
        params["after"] = after
    query = sql.SQL(
        """SELECT {columns}, {geometry} AS geometry FROM {source}
            WHERE {conditions} ORDER BY g.code LIMIT %(limit)s"""
    ).format(
        columns=_GRID_COLUMNS,
        geometry=_geometry(where.simplify),
        source=_GRID_FROM,
        conditions=sql.SQL(" AND ").join(conditions),
    )
    rows = conn.execute(query, params).fetchall()
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1]["code"]
    return rows, None


def get_grid(conn: psycopg.Connection, *, code: str, now: datetime, simplify: float | None = None) -> dict:
    """One grid with its ancestors (county first) and KPIs over it and everything below it."""
    query = sql.SQL(
        "SELECT {columns}, g.path, {geometry} AS geometry FROM {source} WHERE g.code = %(code)s"
    ).format(columns=_GRID_COLUMNS, geometry=_geometry(simplify), source=_GRID_FROM)
    grid = conn.execute(query, {"code": code, "simplify": simplify}).fetchone()
    if grid is None:
        raise NotFound(f"no grid with code {code!r}", field="code")
    path = grid.pop("path")
    grid["ancestors"] = conn.execute(
        """SELECT a.code, a.level, a.name_zh, a.name_en FROM grids a
            WHERE a.path @> %s::ltree AND a.path <> %s::ltree ORDER BY nlevel(a.path)""",
        [path, path],
    ).fetchall()
    grid["kpis"] = conn.execute(
        """SELECT count(*) AS incidents,
                  count(*) FILTER (WHERE i.status NOT IN ('closed', 'rejected')) AS open,
                  count(*) FILTER (WHERE i.status NOT IN ('closed', 'rejected')
                                     AND i.due_at < %(now)s) AS open_overdue,
                  count(*) FILTER (WHERE i.status = 'closed') AS closed,
                  count(*) FILTER (WHERE i.status = 'closed' AND i.closed_at <= i.due_at
                                     AND i.due_at <= %(now)s) AS closed_on_time,
                  -- Due by now (docs/analytics.md): not rejected, due time passed.
                  count(*) FILTER (WHERE i.status <> 'rejected' AND i.due_at <= %(now)s) AS due,
                  count(*) FILTER (WHERE i.reported_at >= %(month_ago)s) AS reported_last_30_days,
                  count(*) FILTER (WHERE i.self_handled) AS self_handled,
                  round(avg(i.rating), 2)::float AS average_rating
             FROM incidents i
            WHERE i.grid_id IN (SELECT d.id FROM grids d WHERE d.path <@ %(path)s::ltree)""",
        {"now": now, "month_ago": now - timedelta(days=30), "path": path},
    ).fetchone()
    # 按期结案率: closed on time ÷ due, as in the bulletin (a grid that closes nothing scores 0).
    due = grid["kpis"]["due"]
    grid["kpis"]["on_time_rate"] = round(grid["kpis"]["closed_on_time"] / due, 4) if due else None
    return grid
