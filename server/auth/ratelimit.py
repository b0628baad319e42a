"""Failed-login rate limiting, kept in the database so every gunicorn worker counts the same.

A username is locked for the rest of the window after ``PER_USERNAME`` failures, and an address
after ``PER_ADDRESS`` failures (one address guessing many usernames).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from server.errors import TooManyRequests

WINDOW = timedelta(minutes=15)
PER_USERNAME = 5
PER_ADDRESS = 20


def check_login_allowed(conn: psycopg.Connection, *, username: str, remote_addr: str, now: datetime) -> None:
    """Raise TooManyRequests when this username or address failed too often in the window."""
    since = now - WINDOW
    row = conn.execute(
        """SELECT (SELECT count(*) FROM login_failures
                    WHERE lower(username) = lower(%(username)s) AND at > %(since)s) AS by_username,
                  (SELECT count(*) FROM login_failures
                    WHERE remote_addr = %(addr)s AND at > %(since)s) AS by_address,
                  (SELECT max(at) FROM login_failures
                    WHERE (lower(username) = lower(%(username)s) OR remote_addr = %(addr)s)
                      AND at > %(since)s) AS newest""",
        {"username": username, "addr": remote_addr, "since": since},
    ).fetchone()
    if row["by_username"] >= PER_USERNAME or row["by_address"] >= PER_ADDRESS:
        # An upper bound: the lock lifts once the newest failure leaves the window.
        retry_after = max(1, int((row["newest"] + WINDOW - now).total_seconds()))
        raise TooManyRequests(
            "too many failed logins; try again later / 登录失败次数过多，请稍后再试",
            field="username",
            retry_after=retry_after,
        )


def record_login_failure(conn: psycopg.Connection, *, username: str, remote_addr: str, now: datetime) -> None:
    conn.execute(
        "INSERT INTO login_failures (username, remote_addr, at) VALUES (%s, %s, %s)",
        [username[:200], remote_addr, now],
    )


def clear_login_failures(conn: psycopg.Connection, *, username: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE lower(username) = lower(%s)", [username])
