"""Reading from streaming standbys without reading the past.

The primary takes every write and the change feed; a standby (``GRIDWATCH_REPLICA_URLS``)
takes reads that may be served from a copy: tiles, lists and analytics. A copy may be behind, so
each process keeps the primary's WAL position as of the newest change it has been told about
(``Freshness``: the tile change listener advances it on each notification, before it drops the
cached tiles the change touched). A read goes to a standby only once that standby's replay
position has passed it: the map never draws a tile older than what the change feed announced.
A standby that is behind waits up to ``replica_wait_ms`` to catch up, else the read goes to the
primary. One that is down is skipped for ``replica_retry_s``; one that lags more than
``replica_max_lag_s`` (replaying old WAL, or cut off from the primary) is skipped until it has
caught up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

# How long a read waits for a pooled standby connection before it reads the primary instead.
BORROW_TIMEOUT_S = 0.5
POLL_INTERVAL_S = 0.005

# One round trip says how far the standby has replayed and how old its newest replayed commit is
# (0 when it has replayed all it received: an idle primary is no lag).
POSITION_SQL = """
SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn AS replayed,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END AS lag_seconds,
       pg_is_in_recovery() AS in_recovery
"""


class Freshness:
    """The primary's WAL position (bytes since 0/0) that a read must include: None while this
    process hears of no changes (its listener is not connected), and then every read goes to
    the primary."""

    def __init__(self) -> None:
        self._position: int | None = None
        self._lock = threading.Lock()

    @property
    def position(self) -> int | None:
        return self._position

    def advance(self, position: int) -> None:
        with self._lock:
            self._position = max(self._position or 0, position)

    def forget(self) -> None:
        with self._lock:
            self._position = None


def primary_position(conn: psycopg.Connection) -> int:
    """The primary's current WAL insert position: every commit seen so far lies before it. Not
    ``pg_current_wal_lsn()``, the write position: with ``synchronous_commit = off`` a commit
    may still sit in the WAL buffers beyond it."""
    row = conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn AS position").fetchone()
    return int(row["position"] if isinstance(row, dict) else row[0])


@dataclass
class StandbyState:
    name: str
    status: str  # "streaming", "lagging", "down", "not a standby"
    lag_seconds: float | None
    replayed: int | None

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "lag_seconds": self.lag_seconds}


class Standby:
    def __init__(
        self,
        url: str,
        *,
        options: str,
        min_size: int,
        max_size: int,
        configure: Callable[[psycopg.Connection], None] | None,
        max_lag_s: float,
        retry_s: float,
    ) -> None:
        self.url = url
        self.name = standby_name(url)
        self.max_lag_s = max_lag_s
        self.retry_s = retry_s
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "options": options, "connect_timeout": 2},
            configure=configure,
            open=False,
            name=f"gridwatch-standby-{self.name}",
        )
        self._skip_until = 0.0

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    @property
    def skipped(self) -> bool:
        return time.monotonic() < self._skip_until

    def _skip(self) -> None:
        self._skip_until = time.monotonic() + self.retry_s

    def borrow(self, required: int, wait_s: float) -> psycopg.Connection | None:
        """A pooled connection whose standby has replayed ``required``, or None (the caller
        then reads the primary). The caller returns it with ``pool.putconn``."""
        if self.skipped:
            return None
        try:
            conn = self.pool.getconn(timeout=BORROW_TIMEOUT_S)
        except PoolTimeout:
            self._skip()
            return None
        try:
            deadline = time.monotonic() + wait_s
            while True:
                state = read_state(conn, self.name, self.max_lag_s)
                conn.rollback()
                if state.status != "streaming":
                    self._skip()
                    break
                if state.replayed >= required:
                    return conn
                if time.monotonic() >= deadline:
                    break  # behind the change asked about, though not lagging: primary this once
                time.sleep(POLL_INTERVAL_S)
        except psycopg.Error:
            log.warning("standby %s failed; reading from the primary", self.name, exc_info=True)
            self._skip()
        self.pool.putconn(conn)
        return None

    def probe(self) -> StandbyState:
        """The standby's state now (for /health), without the skip rules."""
        return probe(self.url, self.max_lag_s)


def standby_name(url: str) -> str:
    """Its address, never its credentials: this name appears in /health and the logs."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}"


def read_state(conn: psycopg.Connection, name: str, max_lag_s: float) -> StandbyState:
    row = conn.execute(POSITION_SQL).fetchone()
    if not row["in_recovery"]:
        # Promoted, or a primary listed by mistake: its data may have forked from ours.
        return StandbyState(name, "not a standby", None, None)
    lag = float(row["lag_seconds"] or 0)
    status = "lagging" if lag > max_lag_s else "streaming"
    return StandbyState(name, status, round(lag, 3), int(row["replayed"]))


def probe(url: str, max_lag_s: float) -> StandbyState:
    """A standby's state now, over a connection of its own (/health, `gridwatch doctor`)."""
    try:
        with psycopg.connect(url, connect_timeout=2, row_factory=dict_row) as conn:
            return read_state(conn, standby_name(url), max_lag_s)
    except psycopg.Error:
        return StandbyState(standby_name(url), "down", None, None)
