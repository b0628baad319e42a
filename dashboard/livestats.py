"""The live map's numbers: the four counters and the overdue cases to ring on the map.

Each is one indexed query over what the viewer may see (the API's own visibility rule), so the
wall screen stays quick with a million incidents.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg import sql

from dashboard.filters import local_midnight
from server.auth import User
from server.incidents.queries import viewer_params, visible_to
from server.incidents.workflow import OPEN_STATUSES

# "Open" and "overdue" repeat the partial index's predicate (sql/0042_baseline_0_1.sql) so the
# planner uses it.
_OPEN = sql.SQL("i.status NOT IN ('closed', 'rejected')")
COUNTERS = {
    "new_today": sql.SQL("i.reported_at >= %(today)s"),
    "open": sql.SQL("i.status = ANY(%(open_statuses)s)"),
    "overdue": _OPEN + sql.SQL(" AND i.due_at < %(now)s"),
    "closed_today": sql.SQL("i.status = 'closed' AND i.closed_at >= %(today)s"),
}


def _where(user: User, categories: list[str]) -> sql.Composable:
    conditions = [visible_to(user)]
    if categories:
        conditions.append(sql.SQL("i.category_code = ANY(%(categories)s)"))
    return sql.SQL(" AND ").join(conditions)


def _params(user: User, now: datetime, categories: list[str]) -> dict:
    return {
        **viewer_params(user),
        "now": now,
        "today": local_midnight(now),
        "open_statuses": list(OPEN_STATUSES),
        "categories": categories,
    }


def counters(conn: psycopg.Connection, *, user: User, now: datetime, categories: list[str]) -> dict[str, int]:
    """New today, open, overdue (open past due) and closed today, in the chosen categories."""
    parts = [
        sql.SQL("(SELECT count(*) FROM incidents i WHERE {} AND {}) AS {}").format(
            condition, _where(user, categories), sql.Identifier(name)
        )
        for name, condition in COUNTERS.items()
    ]
    query = sql.SQL("SELECT ") + sql.SQL(", ").join(parts)
    return conn.execute(query, _params(user, now, categories)).fetchone()


def overdue_ids(
    conn: psycopg.Connection,
    *,
    user: User,
    now: datetime,
    categories: list[str],
    bbox: tuple[float, float, float, float],
    limit: int = 5_000,
) -> list[int]:
    """Open incidents in the map's view past their due time, most overdue first: the map rings
    them in red (the incident tiles carry no due time, and overdue changes with the clock, not
    with a row)."""
    query = sql.SQL(
        "SELECT i.id FROM incidents i WHERE {} AND i.due_at < %(now)s AND {}"
        " AND i.geom && ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, 4326)"
        " ORDER BY i.due_at LIMIT %(limit)s"
    ).format(_OPEN, _where(user, categories))
    west, south, east, north = bbox
    params = {**_params(user, now, categories), "limit": limit, "west": west, "south": south}
    rows = conn.execute(query, {**params, "east": east, "north": north}).fetchall()
    return [row["id"] for row in rows]
