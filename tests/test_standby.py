"""A real streaming standby (`gridwatch db standby`: pg_basebackup from a primary cluster of this
module's own) takes the reads: tiles, lists and analytics come from it once it has replayed
every change the process knows of; never a tile older than the change feed announced; a standby
that is stopped or lags is skipped without an error to the user."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from server_support import free_port
from tiles_support import (
    NEAR,
    bearer,
    decode,
    file_incident,
    last_event_id,
    tile_path,
    token_for,
    wait_for_event,
)

from server.app import create_app
from server.cli import main
from server.db.cluster import Cluster
from server.db.migrate import migrate
from server.db.replication import slot_name
from server.settings import PROJECT_ROOT, Settings
from server.tiles.changes import fold_pending

FIXTURES = Path(__file__).parent / "fixtures"
TILE = tile_path("incidents", NEAR, 16)


@pytest.fixture(scope="module")
def primary():
    cluster = Cluster(
        Path(tempfile.mkdtemp(prefix="primary-", dir=PROJECT_ROOT / "var" / "test")),
        free_port(),
        options={"fsync": "off"},
    )
    cluster.up()
    try:
        url = cluster.url
        migrate(url)
        with psycopg.connect(url) as conn:
            conn.execute((FIXTURES / "small_county.sql").read_text())
            fold_pending(conn)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def standby(primary: Cluster):
    into = Path(tempfile.mkdtemp(prefix="standby-", dir=PROJECT_ROOT / "var" / "test")) / "standby"
    port = free_port()
    result = CliRunner().invoke(
        main,
        ["db", "standby", "--into", str(into), "--port", str(port)],
        env={"GRIDWATCH_DATABASE_URL": primary.url},
    )
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1]
    cluster = Cluster(into, port)
    try:
        yield cluster, url
    finally:
        cluster.destroy()
        with psycopg.connect(primary.url, autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", [slot_name(port)])


def event_of(primary_url: str, incident_id: int, deadline_s: float = 5.0) -> int:
    """The change event that announces the filing of ``incident_id`` (the feed's event id),
    once a fold has made it: the test's own or, at the same moment, the listener's."""
    end = time.monotonic() + deadline_s
    while True:
        last_event_id(primary_url)
        with psycopg.connect(primary_url) as conn:
            found = conn.execute(
                "SELECT max(id) FROM tiles.change_events WHERE incident_id = %s", [incident_id]
            ).fetchone()[0]
        if found is not None:
            return found
        assert time.monotonic() < end, "no change event announced the filing"
        time.sleep(0.02)


def replayed_to_primary(primary_url: str, standby_url: str, deadline_s: float = 10.0) -> None:
    with psycopg.connect(primary_url, autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    end = time.monotonic() + deadline_s
    with psycopg.connect(standby_url, autocommit=True) as conn:
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0]:
            assert time.monotonic() < end, "the standby did not catch up"
            time.sleep(0.05)


@pytest.fixture
def app(primary: Cluster, standby, tmp_path):
    _, standby_url = standby
    app = create_app(
        Settings(
            database_url=primary.url,
            replica_urls=[standby_url],
            replica_retry_s=0.5,
            replica_max_lag_s=2.0,
            var_dir=tmp_path,
            warm_connections=False,
        )
    )
    yield app
    app.extensions["gridwatch.db"].close()


def test_the_cli_made_a_streaming_standby_that_answers_reads(primary, standby):
    _, url = standby
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM grids").fetchone()[0] > 0
    # Right after the copy it may still be catching up; then it streams.
    deadline = time.monotonic() + 10
    with psycopg.connect(primary.url, autocommit=True) as conn:
        while (states := conn.execute("SELECT state FROM pg_stat_replication").fetchall()) != [
            ("streaming",)
        ]:
            assert time.monotonic() < deadline, states
            time.sleep(0.1)


def test_tiles_lists_and_analytics_read_from_a_standby_and_writes_from_the_primary(app, primary, standby):
    standby_cluster, standby_url = standby
    name = f"127.0.0.1:{standby_cluster.port}"
    client = app.test_client()
    operator = bearer(token_for(primary.url, "operator1"))
    replayed_to_primary(primary.url, standby_url)
    # The first tile starts this process's change listener: until it hears the primary, reads
    # go to the primary (it cannot know how fresh a standby must be).
    client.get(TILE, headers=operator)
    app.extensions["gridwatch.tiles"].cache.clear()
    for path in (TILE, "/api/v1/incidents", "/api/v1/grids", "/api/v1/analytics/response?by=township"):
        response = client.get(path, headers=operator)
        assert response.status_code == 200, (path, response.json)
        assert response.headers["X-Read-From"] == name, path
    filed = client.post(
        "/api/v1/incidents",
        headers=bearer(token_for(primary.url, "inspector1")),
        json={"category": "dispute", "lon": NEAR[0], "lat": NEAR[1], "description": "standby test"},
    )
    assert filed.status_code == 201, filed.json
    assert "X-Read-From" not in filed.headers


def test_a_tile_from_the_standby_is_never_older_than_the_change_feed(app, primary, standby):
    """Each filing is announced (the listener applied its change event), then its tile is read
    at once: it holds the incident, from whichever database answered. With replay paused the
    standby cannot have it, and the tile comes from the primary after a brief wait."""
    standby_cluster, standby_url = standby
    client = app.test_client()
    operator = bearer(token_for(primary.url, "operator1"))
    client.get(TILE, headers=operator)
    sources = []
    for _ in range(5):
        incident_id = file_incident(primary.url, NEAR)
        wait_for_event(app, event_of(primary.url, incident_id))
        response = client.get(TILE, headers=operator)
        assert incident_id in [f["id"] for f in decode(response.data)["incidents"]["features"]], dict(
            response.headers
        )
        sources.append(response.headers["X-Read-From"])
    assert f"127.0.0.1:{standby_cluster.port}" in sources, sources

    with psycopg.connect(standby_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            incident_id = file_incident(primary.url, NEAR)
            wait_for_event(app, event_of(primary.url, incident_id))
            started = time.monotonic()
            response = client.get(TILE, headers=operator)
            assert response.headers["X-Read-From"] == "primary"
            assert time.monotonic() - started >= 0.2  # it waited replica_wait_ms for the standby
            assert incident_id in [f["id"] for f in decode(response.data)["incidents"]["features"]], dict(
                response.headers
            )
            health = client.get("/health").json
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
    assert health["standbys"][0]["name"] == f"127.0.0.1:{standby_cluster.port}"


def test_a_lagging_standby_is_skipped_and_health_shows_its_lag(app, primary, standby):
    _, standby_url = standby
    client = app.test_client()
    operator = bearer(token_for(primary.url, "operator1"))
    client.get(TILE, headers=operator)
    with psycopg.connect(standby_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            file_incident(primary.url, NEAR)
            last_event_id(primary.url)
            # Replay stopped at a commit: its age is the lag, past replica_max_lag_s (2 s).
            time.sleep(2.5)
            file_incident(primary.url, NEAR)
            time.sleep(0.3)
            health = client.get("/health").json
            response = client.get("/api/v1/incidents", headers=operator)
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
    assert health["standbys"][0]["status"] == "lagging", health
    assert health["standbys"][0]["lag_seconds"] > 2
    assert response.status_code == 200
    assert response.headers["X-Read-From"] == "primary"


def test_a_stopped_standby_is_skipped_without_an_error(app, primary, standby):
    standby_cluster, standby_url = standby
    name = f"127.0.0.1:{standby_cluster.port}"
    client = app.test_client()
    operator = bearer(token_for(primary.url, "operator1"))
    replayed_to_primary(primary.url, standby_url)
    client.get(TILE, headers=operator)
    assert client.get("/api/v1/incidents", headers=operator).headers["X-Read-From"] == name
    standby_cluster.stop()
    try:
        for path in (TILE, "/api/v1/incidents", "/api/v1/analytics/coverage"):
            app.extensions["gridwatch.tiles"].cache.clear()
            response = client.get(path, headers=operator)
            assert response.status_code == 200, (path, response.json)
            assert response.headers["X-Read-From"] == "primary", path
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json["standbys"] == [{"name": name, "status": "down", "lag_seconds": None}]
    finally:
        standby_cluster.start()
    # Back: after replica_retry_s it takes reads again.
    replayed_to_primary(primary.url, standby_url)
    deadline = time.monotonic() + 10
    while client.get("/api/v1/incidents", headers=operator).headers["X-Read-From"] != name:
        assert time.monotonic() < deadline, "the standby never took reads again"
        time.sleep(0.2)
