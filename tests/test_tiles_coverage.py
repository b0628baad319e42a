"""The coverage layer: each grid's days since its last patrol from zoom 10, each township's gaps
counted at zoom 5-9, and a new patrol drops the cached tiles of its grid and of its township."""

from __future__ import annotations

import time

import psycopg
import pytest
from tiles_support import NEAR, bearer, decode, tile_path, token_for

TOWNSHIP = "511423001"


@pytest.fixture
def inspector(database_url):
    return bearer(token_for(database_url, "inspector1"))


def patrol(database_url: str, grid_codes: list[str], days_ago: float) -> None:
    """A check-in by inspector1 at the centre of each grid, ``days_ago`` days ago."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            """INSERT INTO patrols (user_id, grid_id, started_at, ended_at, geom)
               SELECT (SELECT id FROM users WHERE username = 'inspector1'), g.id,
                      now() - %(days)s * interval '1 day' - interval '1 hour',
                      now() - %(days)s * interval '1 day', ST_PointOnSurface(g.geom)
                 FROM grids g WHERE g.code = ANY (%(codes)s)""",
            {"days": days_ago, "codes": grid_codes},
        )


def township_grids(database_url: str) -> list[tuple[str, bool]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            """SELECT g.code, g.member_id IS NOT NULL FROM grids g JOIN grids t ON g.path <@ t.path
                WHERE t.code = %s AND g.level = 'grid' ORDER BY g.code""",
            [TOWNSHIP],
        ).fetchall()


def features(client, headers, path: str) -> dict[str, dict]:
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    return {f["properties"]["code"]: f["properties"] for f in decode(response.data)["coverage"]["features"]}


def wait_until_dropped(client, headers, path: str, etag: str) -> None:
    """Until the change listener drops the cached tile (it hears of a patrol by NOTIFY)."""
    deadline = time.monotonic() + 5
    while client.get(path, headers=headers).headers["ETag"] == etag:
        assert time.monotonic() < deadline, f"{path} was not dropped"
        time.sleep(0.05)


def test_grids_show_days_since_their_last_patrol_and_their_member(client, database_url, inspector):
    patrol(database_url, ["511423001001001"], days_ago=3.2)
    grids = features(client, inspector, tile_path("coverage", NEAR, 14))
    near = grids["511423001001001"]
    assert near["days_since_patrol"] == 3
    assert near["has_member"] is True
    assert "grids" not in near
    members = dict(township_grids(database_url))
    for code, properties in grids.items():
        assert properties["has_member"] is members[code]
        if code != "511423001001001":
            assert "days_since_patrol" not in properties  # never patrolled


def test_townships_count_their_coverage_gaps(client, database_url, inspector):
    grids = township_grids(database_url)
    codes = [code for code, _ in grids]
    assert len(codes) > 2
    path = tile_path("coverage", NEAR, 8)

    patrol(database_url, codes[:1], days_ago=1)
    township = features(client, inspector, path)[TOWNSHIP]
    assert township["grids"] == len(grids)
    assert township["without_member"] == sum(1 for _, has_member in grids if not has_member)
    assert township["not_patrolled_7d"] == len(grids) - 1
    assert "days_since_patrol" not in township  # some of its grids were never patrolled
    assert "has_member" not in township

    etag = client.get(path, headers=inspector).headers["ETag"]
    patrol(database_url, codes[1:2], days_ago=10.5)
    patrol(database_url, codes[2:], days_ago=2)
    wait_until_dropped(client, inspector, path, etag)
    township = features(client, inspector, path)[TOWNSHIP]
    assert township["not_patrolled_7d"] == 1
    assert township["days_since_patrol"] == 10


def test_a_patrol_drops_its_grid_and_township_tiles(app, database_url, inspector):
    client = app.test_client()
    paths = [tile_path("coverage", NEAR, 8), tile_path("coverage", NEAR, 14)]
    before = {path: client.get(path, headers=inspector) for path in paths}
    assert all(client.get(path, headers=inspector).headers["X-Tile-Cache"] == "hit" for path in paths)

    patrol(database_url, ["511423001001001"], days_ago=0.5)
    for path in paths:
        wait_until_dropped(client, inspector, path, before[path].headers["ETag"])
    assert features(client, inspector, paths[1])["511423001001001"]["days_since_patrol"] == 0
    gaps = features(client, inspector, paths[0])[TOWNSHIP]["not_patrolled_7d"]
    assert gaps == len(township_grids(database_url)) - 1


def test_each_grids_latest_patrol_follows_inserts_updates_and_deletes(conn):
    """tiles.grid_last_patrol, which the layer reads, equals a lookup of each grid's patrols."""

    def recount_differs() -> int:
        return conn.execute(
            """SELECT count(*) AS n
                 FROM (SELECT DISTINCT ON (grid_id) grid_id, started_at, ended_at FROM patrols
                        ORDER BY grid_id, started_at DESC, id DESC) AS latest
                 FULL JOIN tiles.grid_last_patrol AS kept USING (grid_id)
                WHERE (latest.started_at, latest.ended_at)
                      IS DISTINCT FROM (kept.started_at, kept.ended_at)"""
        ).fetchone()["n"]

    conn.execute(
        """INSERT INTO patrols (user_id, grid_id, started_at, ended_at, geom)
           SELECT (SELECT id FROM users WHERE username = 'inspector1'), g.id,
                  now() - i * interval '1 day' - interval '1 hour', now() - i * interval '1 day',
                  ST_PointOnSurface(g.geom)
             FROM grids g, generate_series(1, 3) AS i
            WHERE g.level = 'grid'"""
    )
    # An older patrol filed later does not replace a newer one.
    conn.execute(
        """INSERT INTO patrols (user_id, grid_id, started_at, ended_at, geom)
           SELECT user_id, grid_id, started_at - interval '9 days', ended_at - interval '9 days', geom
             FROM patrols LIMIT 5"""
    )
    assert conn.execute("SELECT count(*) AS n FROM tiles.grid_last_patrol").fetchone()["n"] > 0
    assert recount_differs() == 0
    conn.execute("UPDATE patrols SET grid_id = (SELECT min(grid_id) FROM patrols) WHERE id % 4 = 0")
    assert recount_differs() == 0
    conn.execute("DELETE FROM patrols WHERE started_at > now() - interval '36 hours'")
    assert recount_differs() == 0
    conn.execute("DELETE FROM patrols")
    assert conn.execute("SELECT count(*) AS n FROM tiles.grid_last_patrol").fetchone()["n"] == 0
