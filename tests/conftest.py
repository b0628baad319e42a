"""Tests run on a real PostGIS that the test run starts itself, with the same bootstrap as
``make run`` (``server.db.cluster``), in a throw-away cluster under ``var/test/``.

A template database holds the migrated schema and ``fixtures/small_county.sql``; every test
that asks for ``database_url`` gets a fresh copy of it (``CREATE DATABASE ... TEMPLATE``).
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import psycopg
import pytest
from database_support import SERVER_PASSWORD, create_database, drop_database, server_url
from psycopg.rows import dict_row
from server_support import free_port

from server.app import create_app
from server.db.cluster import Cluster
from server.db.migrate import migrate
from server.db.roles import create_server_role
from server.settings import PROJECT_ROOT, Settings
from server.tiles.changes import fold_pending

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATE = "gridwatch_template"
_database_numbers = itertools.count()

# Durability off: a crash loses a test cluster, never user data, and it halves the run time.
TEST_SERVER_OPTIONS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "'256MB'",
}


@pytest.fixture(scope="session")
def pg_cluster():
    parent = PROJECT_ROOT / "var" / "test"
    parent.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(
        Path(tempfile.mkdtemp(prefix="cluster-", dir=parent)),
        free_port(),
        options=TEST_SERVER_OPTIONS,
    )
    cluster.up()
    create_server_role(cluster.url, password=SERVER_PASSWORD)
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def template_url(pg_cluster: Cluster) -> str:
    url = create_database(pg_cluster, TEMPLATE)
    migrate(url)
    with psycopg.connect(url) as conn:
        conn.execute((FIXTURES / "small_county.sql").read_text())
        fold_pending(conn)  # settled, as a running server leaves it: no queued rollup changes
    return url


@pytest.fixture
def database_url(pg_cluster: Cluster, template_url: str):
    """A fresh database holding the schema and the small test county."""
    name = f"gridwatch_test_{next(_database_numbers)}"
    url = create_database(pg_cluster, name, template=TEMPLATE)
    yield url
    drop_database(pg_cluster, name)


@pytest.fixture
def empty_database_url(pg_cluster: Cluster):
    """A fresh database with nothing in it: not even the schema."""
    name = f"gridwatch_empty_{next(_database_numbers)}"
    url = create_database(pg_cluster, name)
    yield url
    drop_database(pg_cluster, name)


@pytest.fixture
def conn(database_url: str):
    with psycopg.connect(database_url, row_factory=dict_row) as connection:
        yield connection


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # One pooled connection to start with, as a test asks little at once.
    return Settings(
        database_url=server_url(database_url),
        owner_database_url=database_url,
        var_dir=tmp_path,
        secret_key="test-secret",
        pool_min_size=1,
    )


@pytest.fixture
def app(settings: Settings):
    application = create_app(settings)
    yield application
    application.extensions["gridwatch.db"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def tokens(database_url: str) -> dict[str, str]:
    """An API token for each user of the small county, by username."""
    from server.auth.users import issue_token

    with psycopg.connect(database_url, row_factory=dict_row) as connection:
        users = connection.execute("SELECT id, username FROM users ORDER BY id").fetchall()
        return {user["username"]: issue_token(connection, user_id=user["id"]) for user in users}
