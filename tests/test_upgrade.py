"""Upgrades: a database on the oldest supported schema, release 0.1 (its source tree frozen in
fixtures/schema-0.1), with a county in it, upgrades to today's schema with `migrate`, and then
has the schema and gives the answers of a fresh database loaded with the same data."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import psycopg
import pytest
from database_support import create_database, drop_database
from psycopg import sql
from psycopg.rows import tuple_row

from layers.catalog import LAYERS
from server.db.cluster import find_bindir
from server.db.migrate import RELEASE_0_1_MIGRATIONS, MigrationError, discover, function_files, migrate
from server.demo import load_demo
from server.tiles.build import tile_statement
from server.tiles.changes import fold_pending
from server.tiles.geo import tile_fraction

RELEASE_0_1 = Path(__file__).parent / "fixtures" / "schema-0.1"
CHINA = timezone(timedelta(hours=8))
UNTIL = datetime(2026, 6, 1, 10, 40, tzinfo=CHINA)  # the end of the demo's history
# Per process: pytest-xdist may run this module's tests in two workers, each with the fixture.
UPGRADED = f"gridwatch_upgraded_from_0_1_{os.getpid()}"
FRESH = f"gridwatch_fresh_for_upgrade_{os.getpid()}"

# Tables whose every row must match; ids included, as both databases took the same steps.
SEED_TABLES = (
    "grid_levels",
    "departments",
    "categories",
    "work_calendar",
    "work_periods",
    "work_calendar_days",
    "tiles.pyramid_levels",
    "tiles.h3_levels",
)
ROLLUP_TABLES = (
    "tiles.incident_cells",
    "tiles.incident_cells_detail",
    "tiles.incident_cell_totals",
    "tiles.grid_stats",
    "tiles.grid_close_times",
    "tiles.grid_open_due",
    "tiles.grid_open_due_month",
    "tiles.grid_open_due_hour",
    "tiles.grid_last_patrol",
    "tiles.density_cells",
    "tiles.density_cells_detail",
    "tiles.h3_cell_outlines",
    "tiles.pending_changes",
)


def load_county(url: str) -> None:
    """The same data, written the same way, whatever the schema: the demo county (large
    statements: the rollups fold in the statement), then small writes that queue their rollup
    changes and fire the patrol triggers, folded as a server would."""
    load_demo(url, seed=7, incident_count=2_000, until=UNTIL)
    with psycopg.connect(url) as conn:
        conn.execute(  # 端午节 2026, and a Saturday worked instead
            "INSERT INTO work_calendar_days (day, working, name)"
            " VALUES ('2026-06-19', false, '端午节'), ('2026-06-13', true, '调休')"
        )
        file_incidents(conn, at=UNTIL)
        conn.execute(
            """UPDATE incidents SET status = 'closed', resolved_at = %(at)s, closed_at = %(at)s
                WHERE id IN (SELECT id FROM incidents WHERE status = 'dispatched' ORDER BY id LIMIT 5)""",
            {"at": UNTIL},
        )
        conn.execute(
            """INSERT INTO patrols (user_id, grid_id, started_at, ended_at, geom)
               SELECT g.member_id, g.id, %(at)s, %(at)s + interval '1 hour', ST_PointOnSurface(g.geom)
                 FROM grids g WHERE g.level = 'grid' AND g.member_id IS NOT NULL ORDER BY g.id LIMIT 3""",
            {"at": UNTIL},
        )
        conn.execute("DELETE FROM patrols WHERE id = (SELECT max(id) FROM patrols)")
        conn.execute(
            "UPDATE patrols SET started_at = started_at - interval '1 day'"
            " WHERE id = (SELECT min(id) FROM patrols)"
        )
        fold_pending(conn)


def file_incidents(conn: psycopg.Connection, *, at: datetime) -> None:
    """Three incidents dispatched at `at`, each in the grid under an existing incident of its
    category, with the due time its category's limit gives."""
    conn.execute(
        """INSERT INTO incidents (geom, grid_id, category_code, channel, status, reported_at,
                                  dispatched_at, due_at, department_id)
           SELECT i.geom, grid_at(i.geom),
                  c.code, 'app', 'dispatched', %(at)s, %(at)s,
                  due_time(%(at)s, c.time_limit, c.time_limit_unit), c.default_department_id
             FROM categories c
             JOIN LATERAL (SELECT geom FROM incidents WHERE category_code = c.code
                            ORDER BY id LIMIT 1) i ON true
            WHERE c.code IN ('sanitation', 'dispute', 'straw_burning')""",
        {"at": at},
    )


@pytest.fixture(scope="module")
def databases(pg_cluster):
    """The county on release 0.1, then upgraded; and the same county on a fresh database."""
    upgraded = create_database(pg_cluster, UPGRADED)
    fresh = create_database(pg_cluster, FRESH)
    try:
        migrate(upgraded, RELEASE_0_1)
        load_county(upgraded)
        applied = migrate(upgraded)
        migrate(fresh)
        load_county(fresh)
        yield {"upgraded": upgraded, "fresh": fresh, "applied": applied}
    finally:
        drop_database(pg_cluster, UPGRADED)
        drop_database(pg_cluster, FRESH)


def test_the_frozen_release_is_the_one_the_migrator_recognises():
    frozen = {m.version: m.checksum for m in discover(RELEASE_0_1)}
    assert frozen == RELEASE_0_1_MIGRATIONS


def test_the_upgrade_records_the_baseline_and_runs_every_function_file(databases):
    assert [f.path.name for f in databases["applied"]] == [f.path.name for f in function_files()]

    def recorded(url: str) -> list[tuple]:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT version, name, checksum FROM schema_migrations ORDER BY 1").fetchall()

    assert recorded(databases["upgraded"]) == recorded(databases["fresh"])
    assert [row[0] for row in recorded(databases["upgraded"])] == [m.version for m in discover()]


def test_the_upgraded_schema_is_a_fresh_one(databases):
    upgraded, fresh = schema_dump(databases["upgraded"]), schema_dump(databases["fresh"])
    difference = "\n".join(difflib.unified_diff(upgraded, fresh, "upgraded from 0.1", "fresh", lineterm=""))
    assert not difference, difference


def test_the_upgraded_database_answers_as_a_fresh_one(databases):
    assert_same_answers(databases)


def test_triggers_fire_the_same_after_the_upgrade(databases):
    later = UNTIL + timedelta(hours=2)
    for url in (databases["upgraded"], databases["fresh"]):
        with psycopg.connect(url) as conn:
            file_incidents(conn, at=later)
            fold_pending(conn)
            conn.execute(
                """UPDATE incidents SET status = 'closed', resolved_at = %(at)s, closed_at = %(at)s
                    WHERE id = (SELECT max(id) FROM incidents)""",
                {"at": later + timedelta(hours=1)},
            )
            conn.execute(  # more than tiles.bulk_threshold() rows: folded in the statement
                "UPDATE incidents SET priority = 'high' WHERE status NOT IN ('closed', 'rejected')"
            )
            fold_pending(conn)
    assert_same_answers(databases)


def test_a_second_migrate_changes_nothing(databases):
    assert migrate(databases["upgraded"]) == []
    assert migrate(databases["fresh"]) == []


def test_a_database_older_than_release_0_1_is_refused(empty_database_url, tmp_path):
    development = [m for m in discover(RELEASE_0_1) if m.version <= 30]
    for migration in development:
        shutil.copy(migration.path, tmp_path)
    migrate(empty_database_url, tmp_path)
    with pytest.raises(MigrationError, match=r"version 30\) is older than release 0.1.*gridwatch 0.1"):
        migrate(empty_database_url)
    with psycopg.connect(empty_database_url) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert [row[0] for row in versions] == [m.version for m in development]
        assert conn.execute("SELECT to_regclass('login_throttle')").fetchone()[0] is None


def test_a_database_built_from_an_unreleased_tree_is_refused(empty_database_url, tmp_path):
    shutil.copytree(RELEASE_0_1, tmp_path, dirs_exist_ok=True)
    edited = tmp_path / "0042_login_throttle.sql"
    edited.write_text(edited.read_text() + "\n-- a development edit\n")
    migrate(empty_database_url, tmp_path)
    with pytest.raises(MigrationError, match="not release 0.1's"):
        migrate(empty_database_url)


# -- comparing the two databases -----------------------------------------------------------


def schema_dump(url: str) -> list[str]:
    """`pg_dump --schema-only`, without what differs between any two dumps of the same schema."""
    dump = subprocess.run(
        [str(find_bindir() / "pg_dump"), "--schema-only", url], check=True, capture_output=True, text=True
    ).stdout
    # \restrict lines carry a random key (pg_dump 15.14 and later).
    return [line for line in dump.splitlines() if not re.match(r"\\(un)?restrict ", line)]


def assert_same_answers(databases: dict) -> None:
    with (
        psycopg.connect(databases["upgraded"], row_factory=tuple_row) as upgraded,
        psycopg.connect(databases["fresh"], row_factory=tuple_row) as fresh,
    ):
        # Tiles count days and hours up to now(), the start of each transaction: started here,
        # milliseconds apart.
        upgraded.execute("SELECT now()")
        fresh.execute("SELECT now()")
        expected = answers(fresh)
        got = answers(upgraded)
    assert got.keys() == expected.keys()
    differing = [question for question in expected if got[question] != expected[question]]
    assert not differing, f"the upgraded database answers differently: {differing}"


def answers(conn: psycopg.Connection) -> dict[str, object]:
    """What the schema's tables, rollups and functions say about the county, by question."""
    found: dict[str, object] = {}
    for table in SEED_TABLES + ROLLUP_TABLES:
        statement = sql.SQL("SELECT * FROM {}").format(sql.Identifier(*table.split(".")))
        found[table] = sorted(conn.execute(statement).fetchall(), key=repr)
    found["grid paths"] = conn.execute("SELECT id, code, path::text FROM grids ORDER BY id").fetchall()
    # As a multiset: one statement's events take their ids in the order its plan met the rows,
    # which may differ between two databases holding the same rows (see tile_content).
    found["change log"] = sorted(
        conn.execute(
            "SELECT kind, incident_id, status, lon, lat, grid_ids, bbox, count FROM tiles.change_events"
        ).fetchall(),
        key=repr,
    )
    found["incident states"] = conn.execute(
        """SELECT id, grid_id, status, due_at, incident_overdue(status, due_at, closed_at, %(at)s),
                  incident_warning(status, dispatched_at, due_at, %(at)s)
             FROM incidents ORDER BY id""",
        {"at": UNTIL},
    ).fetchall()

    west, south, east, north = conn.execute(
        "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM grids WHERE level = 'county'"
    ).fetchone()
    rng = np.random.default_rng(3)
    points = list(
        zip(rng.uniform(west, east, 50).tolist(), rng.uniform(south, north, 50).tolist(), strict=True)
    )
    found["grid_at"] = [
        conn.execute("SELECT grid_at(ST_SetSRID(ST_Point(%s, %s), 4326))", point).fetchone()[0]
        for point in points
    ]
    found["due times"] = conn.execute(
        """SELECT due_time(start, c.time_limit, c.time_limit_unit), work_time_add(start, interval '10 hours')
             FROM categories c,
                  generate_series(%(at)s::timestamptz, %(at)s::timestamptz + interval '20 days',
                                  interval '7 hours 13 minutes') AS start
            ORDER BY c.code, start""",
        {"at": UNTIL},
    ).fetchall()
    found["open overdue"] = conn.execute(
        "SELECT * FROM tiles.open_overdue(ARRAY(SELECT id FROM grids WHERE level <> 'grid')) ORDER BY 1"
    ).fetchall()

    busiest = conn.execute(
        """SELECT ST_X(i.geom), ST_Y(i.geom) FROM incidents i
            WHERE i.grid_id = (SELECT grid_id FROM incidents GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1)
            ORDER BY i.id LIMIT 1"""
    ).fetchone()
    filters = {
        "none": {"category": None, "status": None, "period_start": None, "period_end": None},
        "category": {
            "category": ["sanitation", "dispute"],
            "status": None,
            "period_start": None,
            "period_end": None,
        },
        "status and period": {
            "category": None,
            "status": ["closed"],
            "period_start": UNTIL.date() - timedelta(days=180),
            "period_end": UNTIL.date(),
        },
    }
    for z in (5, 8, 11, 14, 16):
        x, y = (int(f) for f in tile_fraction(*busiest, z))
        for layer in LAYERS.values():
            for filter_name, filter_values in filters.items():
                params = {
                    "z": z,
                    "x": x,
                    "y": y,
                    "role": "operator",
                    "scope_grids": None,
                    "scope_department": None,
                }
                tile = conn.execute(tile_statement((layer,)), params | filter_values).fetchone()[0]
                found[f"tile {layer.name} {z}/{x}/{y} filtered by {filter_name}"] = tile_content(tile)
    return found


def tile_content(tile: bytes) -> dict:
    """A tile's layers and features, in no order: the order of a tile's features is the order
    its query's plan returned the rows, which may differ between two databases holding the same
    rows (autovacuum analyses one of them first), and tells nothing about the schema."""
    layers = mapbox_vector_tile.decode(tile) if tile else {}
    return {
        name: sorted(
            repr((feature.get("id"), feature["geometry"], sorted(feature["properties"].items())))
            for feature in layer["features"]
        )
        for name, layer in layers.items()
    }
