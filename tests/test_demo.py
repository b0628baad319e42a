"""The demo county (`gridwatch demo load`), loaded once into its own database of the test cluster."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql
from psycopg.rows import dict_row

from server.app import create_app
from server.cli import main
from server.db.migrate import migrate
from server.demo import load_demo
from server.demo.boundary import load_county
from server.demo.bulk import US_PER_SECOND
from server.demo.categories import Category
from server.demo.incidents import generate_incidents
from server.demo.partition import build_partition
from server.demo.people import build_people
from server.demo.settlements import generate_settlements
from server.incidents.service import escalate_overdue
from server.incidents.workflow import OPEN_STATUSES
from server.settings import Settings
from server.worktime import WorkCalendar

CHINA = timezone(timedelta(hours=8))
UNTIL = datetime(2026, 6, 1, 10, 40, tzinfo=CHINA)  # a Monday morning: the moment of the load
INCIDENTS = 60_000  # the default: the demo's backlog is a county's, a few hundred open cases
# Tolerance of the seamless-partition checks: total gap, overlap or spill-over area per level,
# across the county's ~1,940 km². The partition is exact in EPSG:4326 (where PostGIS decides
# which grid covers a point), so areas are taken there and scaled to m² at the county's latitude;
# what remains is floating-point noise of clipping cells along shared edges (measured < 1e-4 m²).
# (Projecting first would not do: a parent's straight edge and its children's split copy of it
# bend differently under a projection, which opens hectares of spurious "gaps".)
AREA_TOLERANCE_M2 = 0.01
M2_PER_SQUARE_DEGREE = 111_320.0 * 111_320.0 * math.cos(math.radians(29.7))


@pytest.fixture(scope="module")
def demo_url(pg_cluster):
    name = "gridwatch_demo_module"
    with psycopg.connect(pg_cluster.url_for("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = pg_cluster.url_for(name)
    migrate(url)
    # Loaded twice: the second load must replace the first one completely.
    load_demo(url, seed=3, incident_count=500, until=UNTIL - timedelta(days=40))
    summary = load_demo(url, seed=11, incident_count=INCIDENTS, until=UNTIL)
    assert summary.counts["incidents"] == INCIDENTS
    yield url
    with psycopg.connect(pg_cluster.url_for("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def demo(demo_url):
    with psycopg.connect(demo_url, row_factory=dict_row) as connection:
        yield connection


# -- the partition ----------------------------------------------------------------------


def test_the_tree_has_hongyas_shape(demo):
    counts = {
        row["level"]: row["n"]
        for row in demo.execute("SELECT level, count(*) AS n FROM grids GROUP BY level").fetchall()
    }
    assert counts == {"county": 1, "township": 13, "village": 150, "grid": 2184}
    households = demo.execute(
        "SELECT min(households) AS low, max(households) AS high, sum(households) AS total FROM grids "
        "WHERE level = 'grid'"
    ).fetchone()
    assert 30 <= households["low"] and households["high"] <= 150
    county = demo.execute("SELECT households, population FROM grids WHERE level = 'county'").fetchone()
    assert county["households"] == households["total"] and county["population"] > 2 * county["households"]
    # Codes extend the parent's code by three digits; the path is the chain of ids.
    broken = demo.execute(
        """SELECT count(*) AS n FROM grids c JOIN grids p ON p.id = c.parent_id
            WHERE c.code NOT LIKE p.code || '___' OR c.path <> p.path || c.id::text"""
    ).fetchone()
    assert broken["n"] == 0


def test_the_grids_tile_the_county_without_gaps_or_overlaps(demo):
    """Each level tiles its parent: no gap (parent minus the union of children) and no overlap
    (sum of children minus their union), within AREA_TOLERANCE_M2; so the 2,184 grids tile the
    county boundary."""
    rows = demo.execute(
        """WITH children AS (
               SELECT p.id, p.level, p.geom AS parent_geom, ST_Union(c.geom) AS union_geom,
                      sum(ST_Area(c.geom)) AS children_area
                 FROM grids p JOIN grids c ON c.parent_id = p.id
                GROUP BY p.id)
           SELECT level, count(*) AS parents,
                  sum(ST_Area(ST_Difference(parent_geom, union_geom))) * %(scale)s AS gap_m2,
                  sum(ST_Area(ST_Difference(union_geom, parent_geom))) * %(scale)s AS outside_m2,
                  sum(children_area - ST_Area(union_geom)) * %(scale)s AS overlap_m2
             FROM children GROUP BY level""",
        {"scale": M2_PER_SQUARE_DEGREE},
    ).fetchall()
    assert {row["level"]: row["parents"] for row in rows} == {"county": 1, "township": 13, "village": 150}
    for row in rows:
        assert row["gap_m2"] < AREA_TOLERANCE_M2, row
        assert row["outside_m2"] < AREA_TOLERANCE_M2, row
        assert abs(row["overlap_m2"]) < AREA_TOLERANCE_M2, row
    whole = demo.execute(
        """SELECT ST_Area(ST_SymDifference(c.geom, g.union_geom)) * %(scale)s AS difference_m2,
                  ST_Area(c.geom::geography) / 1e6 AS county_km2
             FROM grids c, (SELECT ST_Union(geom) AS union_geom FROM grids WHERE level = 'grid') g
            WHERE c.level = 'county'""",
        {"scale": M2_PER_SQUARE_DEGREE},
    ).fetchone()
    assert whole["difference_m2"] < AREA_TOLERANCE_M2
    assert 1900 < whole["county_km2"] < 2000  # Hongya: 1,896 km² officially


def test_the_boundary_is_in_wgs84_not_gcj02():
    """The source is AMap's GCJ-02; converted, the county seat moves ~0.5 km south-west."""
    county, seat = load_county()
    assert county.is_valid
    assert seat == pytest.approx((103.3706, 29.9074), abs=2e-4)  # GCJ-02 was (103.3729, 29.9049)


def test_a_few_grids_have_no_member_and_are_never_patrolled(demo):
    row = demo.execute(
        """SELECT count(*) FILTER (WHERE member_id IS NULL) AS vacant,
                  count(*) FILTER (WHERE member_id IS NULL
                                     AND EXISTS (SELECT 1 FROM patrols p WHERE p.grid_id = g.id)) AS walked
             FROM grids g WHERE level = 'grid'"""
    ).fetchone()
    assert 10 <= row["vacant"] <= 50 and row["walked"] == 0


def test_some_staffed_grids_went_unvisited_for_weeks(demo):
    row = demo.execute(
        """SELECT count(*) AS stale FROM grids g
            WHERE g.level = 'grid' AND g.member_id IS NOT NULL
              AND coalesce((SELECT max(started_at) FROM patrols p WHERE p.grid_id = g.id), '-infinity')
                  < %s - interval '3 weeks'""",
        [UNTIL],
    ).fetchone()
    assert 20 <= row["stale"] <= 400
    weekly = demo.execute(
        "SELECT count(*) / 104.0 / count(DISTINCT grid_id) AS per_grid_week FROM patrols"
    ).fetchone()
    assert 1.0 < weekly["per_grid_week"] < 4.0


# -- incidents --------------------------------------------------------------------------


def test_every_incident_lies_in_its_grid(demo):
    row = demo.execute(
        """SELECT count(*) AS n, count(*) FILTER (WHERE grid_at(geom) = grid_id) AS in_grid,
                  min(reported_at) AS first, max(reported_at) AS last FROM incidents"""
    ).fetchone()
    assert row["n"] == INCIDENTS and row["in_grid"] == INCIDENTS
    assert row["last"] < UNTIL and row["first"] >= UNTIL - timedelta(days=731)


def test_the_history_runs_up_to_the_moment_of_loading(demo):
    """Reports come in up to the load, at the county's pace (~80 a day, fewer at night), so a
    leader's 'today' holds this morning's; patrols run up to the day before."""
    row = demo.execute(
        """SELECT max(reported_at) AS last,
                  count(*) FILTER (WHERE reported_at >= %(today)s) AS today,
                  count(*) FILTER (WHERE reported_at >= %(today)s - interval '7 days'
                                     AND reported_at < %(today)s) / 7.0::float AS per_day,
                  (SELECT max(started_at) FROM patrols) AS last_patrol
             FROM incidents""",
        {"today": UNTIL.replace(hour=0, minute=0)},
    ).fetchone()
    assert UNTIL - timedelta(minutes=30) < row["last"] < UNTIL
    assert 60 < row["per_day"] < 130
    assert 0.2 * row["per_day"] < row["today"] < 0.5 * row["per_day"]  # 00:00-10:40: a quiet night
    assert row["last_patrol"].astimezone(CHINA).date() == (UNTIL - timedelta(days=1)).date()


def test_the_backlog_is_open_in_every_state_and_mostly_within_limits(demo):
    """At the moment of loading, the open cases are a few hundred in every open state (new,
    accepted, dispatched, in progress, on the register, resolved, verified), and 5-15 % of them
    are past their due time: the wall screen is not all red."""
    rows = demo.execute(
        """SELECT status, count(*) AS n,
                  count(*) FILTER (WHERE incident_overdue(status, due_at, closed_at, %(until)s)) AS overdue,
                  count(*) FILTER (WHERE due_at > %(until)s) AS within
             FROM incidents WHERE status NOT IN ('closed', 'rejected') GROUP BY status""",
        {"until": UNTIL},
    ).fetchall()
    by_status = {row["status"]: row for row in rows}
    assert set(by_status) == set(OPEN_STATUSES)
    open_cases = sum(row["n"] for row in rows)
    overdue = sum(row["overdue"] for row in rows)
    assert 100 <= open_cases <= 600
    assert 0.05 <= overdue / open_cases <= 0.15, (overdue, open_cases)
    with_clock = sum(row["n"] for row in rows if row["status"] not in ("reported", "accepted", "registered"))
    assert sum(row["within"] for row in rows) > 0.8 * with_clock
    # On the register the clock stops: no due time, so not overdue.
    assert by_status["registered"]["overdue"] == by_status["registered"]["within"] == 0


def test_the_history_is_what_the_services_would_have_left(demo):
    """Due times are what dispatch computes (due_time(): working time for working-time
    categories), and the escalation job finds nothing left to escalate at the load."""
    wrong = demo.execute(
        """SELECT count(*) AS n,
                  count(*) FILTER (WHERE abs(extract(epoch FROM i.due_at
                      - due_time(i.dispatched_at, c.time_limit, c.time_limit_unit))) > 0.001) AS wrong
             FROM incidents i JOIN categories c ON c.code = i.category_code
            WHERE i.due_at IS NOT NULL AND i.extension_count = 0 AND i.id % 20 = 0"""
    ).fetchone()
    assert wrong["n"] > 1000 and wrong["wrong"] == 0
    try:
        assert escalate_overdue(demo, now=UNTIL) == 0
    finally:
        demo.rollback()


def test_seasons_follow_the_harvest_and_the_rains(demo):
    share = demo.execute(
        """SELECT category_code,
                  avg((extract(month FROM reported_at AT TIME ZONE 'Asia/Shanghai') IN (9, 10))::int)::float
                      AS sep_oct,
                  avg((extract(month FROM reported_at AT TIME ZONE 'Asia/Shanghai') IN (6, 7, 8))::int)::float
                      AS jun_aug
             FROM incidents GROUP BY category_code"""
    ).fetchall()
    by_category = {row["category_code"]: row for row in share}
    assert by_category["straw_burning"]["sep_oct"] > 0.45  # two months of twelve hold half of it
    assert by_category["flood_geohazard"]["jun_aug"] > 0.6
    assert by_category["dispute"]["jun_aug"] < 0.3 < by_category["flood_geohazard"]["jun_aug"] / 2


def test_sanitation_clusters_in_towns_and_floods_in_the_mountains(demo):
    rows = demo.execute(
        """SELECT i.category_code, avg((v.name_zh LIKE '%%社区')::int) AS in_community
             FROM incidents i JOIN grids g ON g.id = i.grid_id JOIN grids v ON v.id = g.parent_id
            GROUP BY i.category_code"""
    ).fetchall()
    in_town = {row["category_code"]: float(row["in_community"]) for row in rows}
    assert in_town["sanitation"] > 2 * in_town["straw_burning"]
    assert in_town["sanitation"] > 1.5 * in_town["flood_geohazard"]


def test_workflow_histories_match_the_incidents(demo):
    """The last status-changing event of each incident lands on the incident's status, every
    recorded step has its event, and the mix of outcomes is that of a real center."""
    mismatched = demo.execute(
        """SELECT count(*) AS n FROM incidents i
             JOIN LATERAL (SELECT e.to_status FROM incident_events e
                            WHERE e.incident_id = i.id AND e.action NOT IN ('rate', 'escalate', 'extend')
                            ORDER BY e.at DESC, e.id DESC LIMIT 1) last ON true
            WHERE last.to_status <> i.status"""
    ).fetchone()
    assert mismatched["n"] == 0
    missing = demo.execute(
        """SELECT count(*) AS n FROM incidents i
            WHERE NOT EXISTS (SELECT 1 FROM incident_events e WHERE e.incident_id = i.id
                                AND e.action = 'report' AND e.at = i.reported_at)
               OR (i.closed_at IS NOT NULL AND NOT EXISTS (
                      SELECT 1 FROM incident_events e WHERE e.incident_id = i.id
                         AND e.action = 'close' AND e.at = i.closed_at))
               OR (i.dispatched_at IS NOT NULL AND NOT EXISTS (
                      SELECT 1 FROM incident_events e WHERE e.incident_id = i.id
                         AND e.action IN ('dispatch', 'resume') AND e.at = i.dispatched_at))
               OR (i.registered_at IS NOT NULL AND NOT EXISTS (
                      SELECT 1 FROM incident_events e WHERE e.incident_id = i.id
                         AND e.action = 'register' AND e.at = i.registered_at))"""
    ).fetchone()
    assert missing["n"] == 0
    mix = demo.execute(
        """SELECT avg((status = 'closed')::int)::float AS closed,
                  avg((status = 'rejected')::int)::float AS rejected,
                  avg(self_handled::int)::float AS self_handled,
                  avg((rework_count > 0)::int)::float AS reworked,
                  avg(incident_overdue(status, due_at, closed_at, %(until)s)::int)::float AS overdue,
                  count(*) FILTER (WHERE status NOT IN ('closed', 'rejected')) AS open,
                  count(*) FILTER (WHERE status NOT IN ('closed', 'rejected') AND due_at < %(until)s)
                      AS open_overdue
             FROM incidents""",
        {"until": UNTIL},
    ).fetchone()
    assert 0.85 < mix["closed"] < 0.97
    assert 0.01 < mix["rejected"] < 0.08
    assert 0.1 < mix["self_handled"] < 0.4
    assert 0.02 < mix["reworked"] < 0.08
    assert 0.05 < mix["overdue"] < 0.3
    assert mix["open"] > 0 and mix["open_overdue"] > 0


def test_response_times_differ_by_township_and_department(demo):
    townships = demo.execute(
        """SELECT t.code, percentile_cont(0.5) WITHIN GROUP (
                      ORDER BY extract(epoch FROM i.closed_at - i.dispatched_at)::float) AS median_s
             FROM incidents i JOIN grids g ON g.id = i.grid_id
             JOIN grids t ON t.level = 'township' AND t.path @> g.path
            WHERE i.closed_at IS NOT NULL AND i.dispatched_at IS NOT NULL AND i.category_code = 'sanitation'
            GROUP BY t.code"""
    ).fetchall()
    medians = [row["median_s"] for row in townships]
    assert len(medians) == 13 and max(medians) > 1.5 * min(medians)
    departments = demo.execute(
        """SELECT department_id,
                  avg(extract(epoch FROM closed_at - dispatched_at) / extract(epoch FROM c.time_limit))::float
                      AS relative
             FROM incidents i JOIN categories c ON c.code = i.category_code
            WHERE closed_at IS NOT NULL AND dispatched_at IS NOT NULL GROUP BY department_id"""
    ).fetchall()
    relative = [row["relative"] for row in departments]
    assert max(relative) > 1.3 * min(relative)


def test_health_reports_the_demo_county(demo_url, tmp_path):
    app = create_app(Settings(database_url=demo_url, var_dir=tmp_path, secret_key="test"))
    try:
        body = app.test_client().get("/health").get_json()
    finally:
        app.extensions["gridwatch.db"].close()
    assert body["status"] == "ok"
    assert body["counts"] == {"grids": 2184, "incidents": INCIDENTS}


def test_a_reload_replaces_everything_and_keeps_derived_data_in_step(demo):
    """The fixture loaded another county first. Nothing of it is left, and the tile rollups,
    which triggers keep, count the incidents of the second load only."""
    row = demo.execute(
        """SELECT (SELECT count(*) FROM incidents) AS incidents,
                  (SELECT count(DISTINCT incident_id) FROM incident_events) AS with_events,
                  (SELECT max(id) FROM incidents) AS last_id,
                  (SELECT min(id) FROM patrols) AS first_patrol,
                  (SELECT sum(n) FROM tiles.incident_cells WHERE level = 6) AS in_rollup,
                  (SELECT count(*) FROM users WHERE username LIKE 'gm%%') AS members"""
    ).fetchone()
    assert row["incidents"] == row["with_events"] == row["last_id"] == row["in_rollup"] == INCIDENTS
    assert row["members"] == 2184 - 24
    assert row["first_patrol"] == 1  # ids start afresh: same seed, same rows, ids included


SCHEMA_OBJECTS = """
    SELECT c.conrelid::regclass::text AS on_table, c.conname AS name,
           pg_get_constraintdef(c.oid) AS definition, c.convalidated AS validated
      FROM pg_constraint c WHERE c.connamespace = 'public'::regnamespace
    UNION ALL
    SELECT tablename, indexname, indexdef, true FROM pg_indexes WHERE schemaname = 'public'
"""


def test_the_load_puts_back_every_key_index_and_constraint(demo, conn):
    """The load drops keys and indexes for speed; afterwards the schema is as migrations left it
    (compared with a fresh test database), every constraint validated."""
    loaded = {tuple(row.values()) for row in demo.execute(SCHEMA_OBJECTS).fetchall()}
    fresh = {tuple(row.values()) for row in conn.execute(SCHEMA_OBJECTS).fetchall()}
    assert loaded == fresh


def test_load_if_empty_keeps_a_loaded_county(demo_url):
    result = CliRunner().invoke(
        main, ["demo", "load", "--if-empty"], env={"GRIDWATCH_DATABASE_URL": demo_url}
    )
    assert result.exit_code == 0, result.output
    assert "already loaded" in result.output


# -- determinism ------------------------------------------------------------------------


def _partition(seed: int):
    county, seat = load_county()
    rng = np.random.default_rng(seed)
    return build_partition(county, generate_settlements(county, seat, rng), rng)


def test_the_same_seed_builds_the_same_county_and_another_seed_another():
    first, again, other = _partition(5), _partition(5), _partition(6)
    assert [(a.code, a.name_zh, a.households, a.geom.wkb) for a in first.areas] == [
        (a.code, a.name_zh, a.households, a.geom.wkb) for a in again.areas
    ]
    assert [a.households for a in first.areas] != [a.households for a in other.areas]


def test_the_same_seed_and_moment_give_the_same_incidents_and_another_moment_others():
    county, seat = load_county()
    rng = np.random.default_rng(5)
    settlements = generate_settlements(county, seat, rng)
    partition = build_partition(county, settlements, rng)
    people = build_people(partition, {1: "emergency", 2: "urban_management"}, rng)
    categories = [
        Category("safety_hazard", 48 * 3600 * US_PER_SECOND, 1, "high"),
        Category("sanitation", 7 * 3600 * US_PER_SECOND, 2, "normal", working=True),
        Category("straw_burning", 4 * 3600 * US_PER_SECOND, 1, "urgent"),
    ]

    def generate(until: datetime) -> dict:
        until_us = int(until.timestamp()) * US_PER_SECOND
        calendar = WorkCalendar.build(
            offset_us=8 * 3600 * US_PER_SECOND,
            weekdays={1, 2, 3, 4, 5},
            periods=[(int(8.5 * 3600) * US_PER_SECOND, 12 * 3600 * US_PER_SECOND)],
            exceptions={},
            first_day=until_us // US_PER_SECOND // 86400 - 740,
            last_day=until_us // US_PER_SECOND // 86400 + 1500,
        )
        columns = generate_incidents(
            partition=partition, households=settlements.households, people=people, categories=categories,
            count=3000, until_us=until_us, first_id=1, rng=np.random.default_rng(9), calendar=calendar,
        )  # fmt: skip
        return {name: values for name, (_, values) in columns.items()}

    first, again, later = generate(UNTIL), generate(UNTIL), generate(UNTIL + timedelta(hours=1))
    assert first.keys() == again.keys()
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not np.array_equal(first["reported_at"], later["reported_at"])
    assert first["reported_at"].max() < int(UNTIL.timestamp()) * US_PER_SECOND


def test_working_time_in_numpy_is_what_sql_computes(conn):
    """WorkCalendar.add (the demo's due times, for millions at once) against SQL work_time_add,
    with a holiday, a worked weekend day and starts on period boundaries."""
    conn.execute(
        """INSERT INTO work_calendar_days VALUES ('2026-10-01', false, '国庆节'),
                                                 ('2026-10-10', true, '调休');
           UPDATE work_periods SET starts = '08:00', ends = '11:30' WHERE starts = '08:30'"""
    )
    calendar = WorkCalendar.read(conn, first=UNTIL, last=UNTIL + timedelta(days=400))
    rng = np.random.default_rng(3)
    start_us = int(datetime(2026, 9, 25, tzinfo=CHINA).timestamp()) * US_PER_SECOND
    starts = start_us + rng.integers(0, 20 * 86400, 400) * US_PER_SECOND
    starts[:4] = [int(datetime(2026, 9, 30, hour, minute, tzinfo=CHINA).timestamp()) * US_PER_SECOND
                  for hour, minute in ((8, 30), (12, 0), (17, 30), (23, 0))]  # fmt: skip
    amounts = rng.choice([0.25, 1, 3.5, 7, 21, 35], 400) * 3600 * US_PER_SECOND
    ours = calendar.add(starts, amounts.astype(np.int64))
    theirs = conn.execute(
        """SELECT array_agg((extract(epoch FROM work_time_add(to_timestamp(s / 1e6),
                                                              make_interval(secs => a / 1e6))) * 1e6)::bigint
                            ORDER BY n) AS due
             FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY AS u(s, a, n)""",
        [starts.tolist(), amounts.astype(np.int64).tolist()],
    ).fetchone()["due"]
    assert np.abs(ours - np.array(theirs)).max() <= 1
