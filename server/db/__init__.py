"""The connection pool. Views borrow a connection per request; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from flask import Flask, current_app
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

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

    def open(self) -> None:
        # Do not wait: a server whose database is down still starts and answers /health 503.
        self.pool.open(wait=False)

    def close(self) -> None:
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
    def autocommit_connection(self, timeout: float = 5.0) -> Iterator[psycopg.Connection]:
        """A pooled connection without a transaction, for a lookup that needs none (each
        statement commits by itself): it saves the BEGIN and the COMMIT round trip."""
        with self.connection(timeout) as conn:
            conn.autocommit = True
            try:
                yield conn
            finally:
                conn.autocommit = False


def init_app(
    app: Flask, settings: Settings, configure: Callable[[psycopg.Connection], None] | None = None
) -> Database:
    database = Database(settings, configure)
    database.open()
    app.extensions[EXTENSION_KEY] = database
    return database


def get_db() -> Database:
    return current_app.extensions[EXTENSION_KEY]
