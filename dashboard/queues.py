"""The grid centre's work queues: what waits for an operator, each a query over what the viewer
may see (the API's visibility rule), in the shell's categories and period."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg import sql

from server.auth import User
from server.incidents.queries import viewer_params, visible_to

_OPEN = "i.status NOT IN ('closed', 'rejected')"  # the partial due_at index's own predicate
# name -> (which incidents, oldest first by)
QUEUES: dict[str, tuple[sql.SQL, sql.SQL]] = {
    "new": (sql.SQL("i.status = 'reported'"), sql.SQL("i.reported_at")),
    "overdue": (sql.SQL(_OPEN + " AND i.due_at < %(now)s"), sql.SQL("i.due_at")),
    "due_soon": (
        sql.SQL(
            _OPEN + " AND i.due_at >= %(now)s"
            " AND incident_warning(i.status, i.dispatched_at, i.due_at, %(now)s) = 'yellow'"
        ),
        sql.SQL("i.due_at"),
    ),
    # A department sent the case back (status 'accepted' again): it needs a new dispatch.
    "returned": (
        sql.SQL(
            "i.status = 'accepted' AND EXISTS (SELECT 1 FROM incident_events e"
            " WHERE e.incident_id = i.id AND e.action = 'return')"
        ),
        sql.SQL("i.updated_at"),
    ),
    "verify": (sql.SQL("i.status = 'resolved'"), sql.SQL("i.resolved_at")),
}
ROW_LIMIT = 500


def _conditions(
    queue: str, user: User, categories: list[str], period: tuple[datetime, datetime] | None
) -> sql.Composable:
    conditions = [QUEUES[queue][0], visible_to(user)]
    if categories:
        conditions.append(sql.SQL("i.category_code = ANY(%(categories)s)"))
    if period is not None:
        conditions.append(sql.SQL("i.reported_at >= %(period_start)s AND i.reported_at < %(period_end)s"))
    return sql.SQL(" AND ").join(conditions)


def _params(user: User, now: datetime, categories: list[str], period) -> dict:
    start, end = period if period is not None else (None, None)
    return {
        **viewer_params(user),
        "now": now,
        "categories": categories,
        "period_start": start,
        "period_end": end,
    }


def queue_sizes(
    conn: psycopg.Connection,
    *,
    user: User,
    now: datetime,
    categories: list[str],
    period: tuple[datetime, datetime] | None,
) -> dict[str, int]:
    parts = [
        sql.SQL("(SELECT count(*) FROM incidents i WHERE {}) AS {}").format(
            _conditions(name, user, categories, period), sql.Identifier(name)
        )
        for name in QUEUES
    ]
    return conn.execute(
        sql.SQL("SELECT ") + sql.SQL(", ").join(parts), _params(user, now, categories, period)
    ).fetchone()


def queue_rows(
    conn: psycopg.Connection,
    *,
    queue: str,
    user: User,
    now: datetime,
    categories: list[str],
    period: tuple[datetime, datetime] | None,
) -> list[dict]:
    """The queue's incidents, the longest waiting first, at most ``ROW_LIMIT``."""
    query = sql.SQL(
        """SELECT i.id, i.category_code AS category, c.name_zh AS category_name_zh,
                  c.name_en AS category_name_en, g.code AS grid, g.name_zh AS grid_name, i.status,
                  i.description, i.reported_at, i.due_at,
                  incident_warning(i.status, i.dispatched_at, i.due_at, %(now)s) AS warning
             FROM incidents i
             JOIN categories c ON c.code = i.category_code
             JOIN grids g ON g.id = i.grid_id
            WHERE {conditions}
            ORDER BY {order}, i.id
            LIMIT %(limit)s"""
    ).format(conditions=_conditions(queue, user, categories, period), order=QUEUES[queue][1])
    return conn.execute(query, {**_params(user, now, categories, period), "limit": ROW_LIMIT}).fetchall()
