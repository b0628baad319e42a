"""Idempotency keys: a retried POST (a phone's queue resending after a lost answer) finds what
its first attempt created instead of creating it twice (``idempotency_keys``, sql/0042_baseline_0_1.sql)."""

from __future__ import annotations

import psycopg
from flask import request

from server.auth.users import User
from server.errors import Conflict, InvalidInput, Unprocessable

KEY_HEADER = "Idempotency-Key"


def send_claim(conn: psycopg.Connection, *, key: str, user: User, fingerprint: bytes) -> psycopg.Cursor:
    """Claim the key for this request; the cursor yields a row when this request got it.

    The primary key makes a concurrent retry's INSERT wait for the first transaction; once that
    commits, the retry's ``ON CONFLICT DO NOTHING`` inserts nothing and it reads the first row
    (``earlier_request``).
    """
    return conn.execute(
        """INSERT INTO idempotency_keys (key, user_id, request_sha256) VALUES (%s, %s, %s)
           ON CONFLICT (key) DO NOTHING RETURNING key""",
        [key, user.id, fingerprint],
    )


def earlier_request(conn: psycopg.Connection, *, key: str, user: User, fingerprint: bytes) -> dict:
    """What an earlier request with this key created (``incident_id`` or ``patrol_id``), if it
    was the same user and the same request."""
    earlier = conn.execute(
        "SELECT user_id, request_sha256, incident_id, patrol_id FROM idempotency_keys WHERE key = %s", [key]
    ).fetchone()
    if earlier["user_id"] != user.id:
        raise Conflict("this Idempotency-Key was used by another user", field=KEY_HEADER)
    if bytes(earlier["request_sha256"]) != fingerprint:
        raise Unprocessable("this Idempotency-Key was used for a different request", field=KEY_HEADER)
    return earlier


def key_from_request() -> str | None:
    """The request's Idempotency-Key header, checked (None when it has none)."""
    key = request.headers.get(KEY_HEADER)
    if key is not None and not (1 <= len(key) <= 200 and key.isprintable()):
        raise InvalidInput("Idempotency-Key: 1-200 printable characters", field=KEY_HEADER)
    return key
