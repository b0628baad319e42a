"""Login sessions kept on the server (the ``login_sessions`` table).

The browser's signed cookie carries a random secret; the table holds its sha256, the user and
when the session was last used. A session ends ``session_hours`` after its last request, at
logout, or when its user is deactivated: every copy of the cookie stops working at once, and
the change feed ends the session's streams (a trigger notifies it).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from server.auth.users import USER_GRIDS_SQL, User, user_from_row

# Requests refresh ``last_seen_at`` at most this often: a write per request would serialise
# a page's parallel requests on one row.
TOUCH_EVERY = timedelta(minutes=1)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def start_session(
    conn: psycopg.Connection, *, user_id: int, remote_addr: str, now: datetime, idle: timedelta
) -> str:
    """A new session for the user; returns the secret for the cookie. Sessions idle past their
    lifetime are removed on the way (their streams have ended already)."""
    conn.execute("DELETE FROM login_sessions WHERE last_seen_at < %s", [now - idle])
    secret = secrets.token_urlsafe(32)
    conn.execute(
        """INSERT INTO login_sessions (user_id, secret_sha256, created_at, last_seen_at, remote_addr)
           VALUES (%s, %s, %s, %s, %s)""",
        [user_id, _digest(secret), now, now, remote_addr[:100]],
    )
    return secret


def session_user(
    conn: psycopg.Connection, *, secret: str, now: datetime, idle: timedelta
) -> tuple[int, User, datetime] | None:
    """The session's id, its active user and when it ends, or None when it has ended."""
    row = conn.execute(
        sql.SQL(
            """SELECT s.id AS session_id, s.last_seen_at, u.id, u.username, u.display_name, u.role,
                      u.department_id, {grids}
                 FROM login_sessions s JOIN users u ON u.id = s.user_id
                WHERE s.secret_sha256 = %s AND s.last_seen_at > %s AND u.active"""
        ).format(grids=USER_GRIDS_SQL),
        [_digest(secret), now - idle],
    ).fetchone()
    if row is None:
        return None
    last_seen = row["last_seen_at"]
    if now - last_seen > TOUCH_EVERY:
        conn.execute("UPDATE login_sessions SET last_seen_at = %s WHERE id = %s", [now, row["session_id"]])
        last_seen = now
    return row["session_id"], user_from_row(row), last_seen + idle


def end_session(conn: psycopg.Connection, *, secret: str) -> None:
    conn.execute("DELETE FROM login_sessions WHERE secret_sha256 = %s", [_digest(secret)])


def end_user_sessions(conn: psycopg.Connection, *, user_id: int) -> int:
    return conn.execute("DELETE FROM login_sessions WHERE user_id = %s", [user_id]).rowcount
