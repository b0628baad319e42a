"""Tiles over real HTTP: GDAL reads a tile URL, and cached tiles are dropped when an incident is
filed (in one process and across two gunicorn workers). The change feed: tests/test_feed.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
from server_support import running_server
from tiles_support import (
    FAR,
    NEAR,
    bearer,
    decode,
    file_incident,
    last_event_id,
    live_server,
    tile_of,
    tile_path,
    token_for,
    wait_for_event,
)


def get(base: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(base + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_gdal_reads_a_tile_url(app):
    z, x, y = tile_of(NEAR, 14)
    with live_server(app) as base:
        result = subprocess.run(
            ["ogrinfo", "-ro", "-al", "-q", f"MVT:{base}/tiles/grids,incident_density/{z}/{x}/{y}.mvt"],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ | {"GDAL_HTTP_TIMEOUT": "10"},
        )
    assert result.returncode == 0, result.stderr
    assert "Layer name: grids" in result.stdout
    assert "Layer name: incident_density" in result.stdout
    assert "code (String) = 511423001001001" in result.stdout
    assert "sanitation (Integer) = 1" in result.stdout


def test_filing_an_incident_drops_exactly_the_tiles_that_hold_it(app, database_url):
    operator = bearer(token_for(database_url, "operator1"))
    near = {z: tile_path("incidents", NEAR, z) for z in (8, 12, 16)}
    near_grids = tile_path("grids", NEAR, 14)
    far = tile_path("incidents", FAR, 16)
    far_grids = tile_path("grids", FAR, 14)
    client = app.test_client()
    before = {
        path: client.get(path, headers=operator) for path in [*near.values(), near_grids, far, far_grids]
    }
    assert all(r.headers["X-Tile-Cache"] == "miss" for r in before.values())
    assert client.get(far, headers=operator).headers["X-Tile-Cache"] == "hit"

    incident_id = file_incident(database_url, NEAR)
    wait_for_event(app, last_event_id(database_url))

    after = {path: client.get(path, headers=operator) for path in [*near.values(), near_grids]}
    for path, response in after.items():
        assert response.headers["X-Tile-Cache"] == "miss", path
        assert response.headers["ETag"] != before[path].headers["ETag"], path
    points = decode(after[near[16]].data)["incidents"]["features"]
    assert incident_id in [f["id"] for f in points]
    cells = decode(after[near[8]].data)["incidents"]["features"]
    assert sum(f["properties"]["count"] for f in cells) == 9
    grid = decode(after[near_grids].data)["grids"]["features"][0]
    assert grid["properties"]["open"] == 2
    for path in (far, far_grids):
        response = client.get(path, headers=operator)
        assert response.headers["X-Tile-Cache"] == "hit", path
        assert response.headers["ETag"] == before[path].headers["ETag"], path


def test_a_state_change_drops_the_tile_too(app, database_url):
    operator = bearer(token_for(database_url, "operator1"))
    path = tile_path("incidents", NEAR, 16)
    client = app.test_client()
    first = client.get(path, headers=operator)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE incidents SET status = 'accepted', accepted_at = reported_at + interval '1 hour'"
            " WHERE ST_DWithin(geom, ST_SetSRID(ST_MakePoint(103.3125, 29.875), 4326), 1e-9)"
        )
    wait_for_event(app, last_event_id(database_url))
    second = client.get(path, headers=operator)
    assert second.headers["ETag"] != first.headers["ETag"]
    assert [f["properties"]["status"] for f in decode(second.data)["incidents"]["features"]] == ["accepted"]


def test_two_worker_processes_both_drop_the_tile(database_url, tmp_path: Path):
    def command(port: int) -> list[str]:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        bind = f"127.0.0.1:{port}"
        config = ["--config", "python:server.gunicorn_conf"]
        return [
            str(gunicorn),
            "server.app:create_app()",
            *config,
            "--bind",
            bind,
            "--workers",
            "2",
            "--threads",
            "4",
        ]

    operator = bearer(token_for(database_url, "operator1"))
    path = tile_path("incidents", NEAR, 16)
    with running_server(command, database_url=database_url, var_dir=tmp_path) as base:
        deadline = time.monotonic() + 30
        # Until each worker process (named by X-Tile-Worker) serves the tile from its own cache.
        cached_by = set()
        old_etags = set()
        while len(cached_by) < 2:
            status, headers, _ = get(base, path, {**operator, "Connection": "close"})
            old_etags.add(headers["ETag"])
            if headers["X-Tile-Cache"] == "hit":
                cached_by.add(headers["X-Tile-Worker"])
            assert time.monotonic() < deadline, "the two workers did not both cache the tile"
        assert status == 200 and len(old_etags) == 1

        incident_id = file_incident(database_url, NEAR)
        new_etag = None
        deadline = time.monotonic() + 10
        while new_etag is None:
            _, headers, body = get(base, path, operator)
            if headers["ETag"] not in old_etags:
                new_etag = headers["ETag"]
                assert incident_id in [f["id"] for f in decode(body)["incidents"]["features"]]
            assert time.monotonic() < deadline, "no worker dropped the tile"
        # The other worker drops its copy when its listener hears of the change: each worker's
        # latest answer must become the new tile (a cached copy that is never dropped stays old).
        latest_by = {}
        while len(latest_by) < 2 or any(etag in old_etags for etag in latest_by.values()):
            _, headers, _ = get(base, path, {**operator, "Connection": "close"})
            latest_by[headers["X-Tile-Worker"]] = headers["ETag"]
            assert time.monotonic() < deadline, f"a worker kept the old tile: {latest_by}"
        assert set(latest_by.values()) == {new_etag}
