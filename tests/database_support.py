"""Databases of the test cluster: created (from a template or empty), and dropped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from server.db.cluster import Cluster
from server.db.migrate import migrate
from server.db.roles import SERVER_ROLE, url_as


def create_database(cluster: Cluster, name: str, template: str | None = None) -> str:
    with psycopg.connect(cluster.url_for("postgres"), autocommit=True) as conn:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)
    return cluster.url_for(name)


@contextmanager
def database_with(cluster: Cluster, name: str, load: Callable[[str], None]) -> Iterator[str]:
    """A database of its own for a module: migrated, filled by ``load(url)``, dropped after."""
    url = create_database(cluster, name)
    try:
        migrate(url)
        load(url)
        yield url
    finally:
        drop_database(cluster, name)


def drop_database(cluster: Cluster, name: str) -> None:
    with psycopg.connect(cluster.url_for("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# The server's role in the test cluster (server/db/roles.py): the apps and servers of the tests
# connect as it, as in production, so a statement that needs more than rows fails here first.
SERVER_PASSWORD = "gridwatch-app-test"


def server_url(owner_url: str) -> str:
    return url_as(owner_url, SERVER_ROLE, SERVER_PASSWORD)
