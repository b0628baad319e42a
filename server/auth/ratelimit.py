"""Login throttling, kept in the database so every gunicorn worker counts the same.

An attempt is counted *before* its password is checked, by one ``INSERT ... ON CONFLICT`` over
three keys: the username from this address, the address (one address guessing many usernames),
and the username (many addresses guessing one). Each key has free attempts; past them each
further attempt waits twice as long as the one before (1 s, 2 s, 4 s, ... at most
``MAX_DELAY``), and an attempt made while a key waits is refused without a password check and
without being counted. A key is forgotten after ``WINDOW`` without an attempt. The upsert's row
lock serializes concurrent attempts, so a burst of guesses gets exactly the free checks. A
successful login clears the username's keys (not the address's: an attacker with one valid
account must not reset their own count).

The username key allows many more attempts than the pair, so that a stranger guessing an
account delays their own address long before the account's owner notices anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from server.errors import TooManyRequests

# A key starts afresh after this long without a counted attempt; the delay stays below it, so
# that waiting out a delay does not also reset the count.
WINDOW = timedelta(minutes=30)
MAX_DELAY = timedelta(minutes=10)
FIRST_DELAY = timedelta(seconds=1)
PER_USERNAME_AND_ADDRESS = 5
PER_ADDRESS = 20
PER_USERNAME = 50

# Refused while a key waits (and not counted); else counted (afresh after a quiet window), and
# from the key's free attempts on, a delay that doubles with each further attempt.
ATTEMPT_SQL = """
INSERT INTO login_throttle AS t (key, free, failures, last_at, blocked_until, refused)
SELECT key, free, 1, %(now)s, NULL, false
  FROM unnest(%(keys)s::text[], %(frees)s::integer[]) AS k(key, free)
ON CONFLICT (key) DO UPDATE SET
    refused = coalesce(t.blocked_until > %(now)s, false),
    failures = CASE WHEN t.blocked_until > %(now)s THEN t.failures
                    WHEN t.last_at < %(now)s - %(window)s THEN 1
                    ELSE t.failures + 1 END,
    last_at = CASE WHEN t.blocked_until > %(now)s THEN t.last_at ELSE %(now)s END,
    blocked_until = CASE
        WHEN t.blocked_until > %(now)s THEN t.blocked_until
        WHEN t.last_at < %(now)s - %(window)s THEN NULL
        WHEN t.failures + 1 >= excluded.free
        THEN %(now)s + least(%(max_delay)s, %(first)s * power(2, t.failures + 1 - excluded.free))
        END
RETURNING key, refused, blocked_until
"""


def attempt_keys(*, username: str, remote_addr: str) -> dict[str, int]:
    """The attempt's keys and each one's free attempts."""
    name = username.strip().lower()[:200]
    return {
        f"user+addr:{name}\n{remote_addr}": PER_USERNAME_AND_ADDRESS,
        f"addr:{remote_addr}": PER_ADDRESS,
        f"user:{name}": PER_USERNAME,
    }


def count_attempt(conn: psycopg.Connection, *, username: str, remote_addr: str, now: datetime) -> None:
    """Count a login attempt before its password is checked, and commit it (so that concurrent
    attempts see it and no lock is held during the check); raise TooManyRequests when one of
    its keys waits."""
    keys = attempt_keys(username=username, remote_addr=remote_addr)
    rows = conn.execute(
        ATTEMPT_SQL,
        {
            "now": now,
            "keys": list(keys),
            "frees": list(keys.values()),
            "window": WINDOW,
            "first": FIRST_DELAY,
            "max_delay": MAX_DELAY,
        },
    ).fetchall()
    conn.execute("DELETE FROM login_throttle WHERE last_at < %s", [now - 2 * WINDOW])
    conn.commit()
    waits = [row["blocked_until"] for row in rows if row["refused"]]
    if waits:
        raise TooManyRequests(
            "too many failed logins; try again later / 登录失败次数过多，请稍后再试",
            field="username",
            retry_after=max(1, int((max(waits) - now).total_seconds() + 0.999)),
        )


def clear_attempts(conn: psycopg.Connection, *, username: str, remote_addr: str) -> None:
    """After a successful login: the username's keys start again (the address's do not)."""
    keys = [
        key for key in attempt_keys(username=username, remote_addr=remote_addr) if not key.startswith("addr:")
    ]
    conn.execute("DELETE FROM login_throttle WHERE key = ANY(%s)", [keys])
