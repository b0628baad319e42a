"""The connection pools. Views borrow a connection per request; the caller owns the transaction.
Writes go to the primary; reads that may come from a copy ask for ``read_connection`` and get a
standby's when one has replayed far enough (server/db/standby.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from flask import Flask, current_app, g, has_request_context
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from server.db.standby import Freshness, Standby
from server.errors import DatabaseUnavailable
from server.settings import Settings

EXTENSION_KEY = "gridwatch.db"


class Database:
    def __init__(
        self, settings: Settings, configure: Callable[[psycopg.Connection], None] | None = None
    ) -> None:
        """``configure`` runs on each connection the pool opens, before it is lent out."""
        self.url = settings.resolved_database_url()
        options = f"-c statement_timeout={settings.statement_timeout_ms} -c timezone=UTC"
        self.pool = ConnectionPool(
            self.url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            kwargs={"row_factory": dict_row, "options": options},
            configure=configure,
            open=False,
            name="gridwatch",
        )
        self.freshness = Freshness()
        self.replica_wait_s = settings.replica_wait_ms / 1000
        self.standbys = [
            Standby(
                url,
                options=options,
                min_size=min(1, settings.pool_min_size),
                max_size=settings.pool_max_size,
                configure=configure,
                max_lag_s=settings.replica_max_lag_s,
                retry_s=settings.replica_retry_s,
            )
            for url in settings.replica_urls
        ]

    def open(self) -> None:
        # Do not wait: a server whose database is down still starts and answers /health 503.
        self.pool.open(wait=False)
        for standby in self.standbys:
            standby.open()

    def close(self) -> None:
        for standby in self.standbys:
            standby.close()
        self.pool.close()

    @contextmanager
    def connection(self, timeout: float = 5.0) -> Iterator[psycopg.Connection]:
        """A pooled connection inside a transaction: committed on success, rolled back on error."""
        try:
            with self.pool.connection(timeout=timeout) as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as error:
            raise DatabaseUnavailable("the database is unreachable") from error

    @contextmanager
    def read_connection(self, timeout: float = 5.0) -> Iterator[psycopg.Connection]:
        """A connection for reading only: a standby's that has replayed every change this
        process knows of, else the primary's. ``g.read_from`` names which, for the response."""
        required = self.freshness.position
        for standby in self.standbys if required is not None else ():
            conn = standby.borrow(required, self.replica_wait_s)
            if conn is not None:
                break
        else:
            _note_read_from("primary")
            with self.connection(timeout) as conn:
                yield conn
            return
        _note_read_from(standby.name)
        try:
            yield conn
            conn.commit()
        except psycopg.OperationalError as error:
            raise DatabaseUnavailable("the standby failed during the read") from error
        finally:
            if not conn.broken and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            standby.pool.putconn(conn)

    @contextmanager
    def autocommit_connection(self, timeout: float = 5.0) -> Iterator[psycopg.Connection]:
        """A pooled connection without a transaction, for a lookup that needs none (each
        statement commits by itself): it saves the BEGIN and the COMMIT round trip."""
        with self.connection(timeout) as conn:
            conn.autocommit = True
            try:
                yield conn
            finally:
                conn.autocommit = False


def _note_read_from(name: str) -> None:
    if has_request_context():
        g.read_from = name


def init_app(
    app: Flask, settings: Settings, configure: Callable[[psycopg.Connection], None] | None = None
) -> Database:
    database = Database(settings, configure)
    database.open()
    app.extensions[EXTENSION_KEY] = database
    if database.standbys:
        app.after_request(_add_read_from_header)
    return database


def _add_read_from_header(response):
    # Which database answered a read (operators checking a standby, and the tests).
    if "read_from" in g:
        response.headers["X-Read-From"] = g.read_from
    return response


def get_db() -> Database:
    return current_app.extensions[EXTENSION_KEY]
