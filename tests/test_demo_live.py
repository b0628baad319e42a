"""`gridwatch demo live`: the demo county goes on after its load, through the services of the API.

The county is loaded once (Monday 09:00, a busy morning); each test works on a copy of it. The
engine's test drives a clock that moves only when slept on, so an hour of the county at speed 60
(a minute of the wall clock) takes as long as its service calls."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from click.testing import CliRunner
from database_support import create_database, drop_database
from psycopg import sql
from psycopg.rows import dict_row

from server.cli import main, supervise
from server.db.migrate import migrate
from server.demo import load_demo
from server.demo.live import Clock, LiveCounty
from server.demo.pace import MINUTE, Pace
from server.settings import PROJECT_ROOT
from server.tiles.changes import fold_pending

CHINA = timezone(timedelta(hours=8))
UNTIL = datetime(2026, 6, 1, 9, 0, tzinfo=CHINA)
LOADED = "gridwatch_live_loaded"
# Rare turns made common, so that a short run takes every one of them.
EVERY_TURN = Pace(
    reject_app=0.25,
    reject_other=0.25,
    register=0.25,
    extend=1.0,
    rework=0.5,
    rated=1.0,
    self_handled=2.0,
    repeat_report=0.6,
    link_duplicate=1.0,
    returned=0.4,
    rework_after=(15 * MINUTE, 0.5),
    rate_after=(15 * MINUTE, 0.5),
    registered_for=(30 * MINUTE, 0.5),
    return_after=(15 * MINUTE, 0.5),
)
TURNS = {"accept", "reject", "link_duplicate", "self_handle", "dispatch", "return", "start", "extend",
         "register", "resume", "resolve", "verify", "rework", "close", "rate", "escalate"}  # fmt: skip


class FakeClock(Clock):
    """Wall time that passes only in sleep()."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.at += timedelta(microseconds=math.ceil(seconds * 1_000_000))


@pytest.fixture(scope="module")
def loaded(pg_cluster):
    url = create_database(pg_cluster, LOADED)
    migrate(url)
    load_demo(url, seed=17, incident_count=30_000, until=UNTIL)
    yield
    drop_database(pg_cluster, LOADED)


@pytest.fixture
def county_url(pg_cluster, loaded, request):
    name = f"gridwatch_live_{request.node.name}"[:63]
    url = create_database(pg_cluster, name, template=LOADED)
    yield url
    drop_database(pg_cluster, name)


def test_an_afternoon_of_the_county_takes_every_turn_through_the_services(county_url):
    """Started three hours after the load, at speed 60 for six minutes of (fake) wall time: reports
    are filed, cases take every turn of the workflow, members patrol, overdue cases escalate, no
    step fails; the change log the live map reads records every new and moved case."""
    start = UNTIL + timedelta(hours=3)
    county = LiveCounty(county_url, speed=60, seed=4, pace=EVERY_TURN, clock=FakeClock(start))
    stats = county.run(threading.Event(), duration=360)
    assert stats.errors == 0 and stats.skipped == 0, stats.line()
    assert TURNS <= set(stats.actions), TURNS - set(stats.actions)
    assert stats.actions["filed"] >= 3 and stats.actions["patrol"] >= 20, stats.line()

    with psycopg.connect(county_url, row_factory=dict_row) as conn:
        events = conn.execute(
            "SELECT action, count(*) AS n FROM incident_events WHERE at >= %s GROUP BY action", [start]
        ).fetchall()
        logged = {row["action"]: row["n"] for row in events}
        assert logged.pop("report") == stats.actions["filed"]
        assert logged == {action: stats.actions[action] for action in logged}
        patrols = conn.execute("SELECT count(*) AS n FROM patrols WHERE ended_at >= %s", [start]).fetchone()
        assert patrols["n"] == stats.actions["patrol"]
        # Every case moved lands on the status its last step led to.
        mismatched = conn.execute(
            """SELECT count(*) AS n FROM incidents i
                 JOIN LATERAL (SELECT e.to_status FROM incident_events e
                                WHERE e.incident_id = i.id AND e.action NOT IN ('rate', 'escalate', 'extend')
                                ORDER BY e.at DESC, e.id DESC LIMIT 1) last ON true
                WHERE i.updated_at >= %s AND last.to_status <> i.status""",
            [start],
        ).fetchone()
        assert mismatched["n"] == 0
        # The live map: a running server folds the queued changes every 250 ms into the change
        # log its feed announces; here the test folds them.
        fold_pending(conn)
        missing = conn.execute(
            """SELECT count(DISTINCT e.incident_id) FILTER (WHERE e.action = 'report') AS new,
                      count(DISTINCT e.incident_id) FILTER (WHERE e.action <> 'report') AS moved,
                      count(DISTINCT e.incident_id) FILTER (WHERE NOT EXISTS (
                          SELECT 1 FROM tiles.change_events c WHERE c.incident_id = e.incident_id
                             AND c.kind = CASE e.action WHEN 'report' THEN 'created' ELSE 'changed' END))
                          AS unlogged
                 FROM incident_events e
                WHERE e.at >= %s AND e.action NOT IN ('rate', 'escalate')""",
            [start],
        ).fetchone()
        assert missing["new"] == stats.actions["filed"] and missing["moved"] > 20
        assert missing["unlogged"] == 0


def test_the_cli_runs_at_speed_60_and_stops_after_its_duration(county_url):
    result = CliRunner().invoke(
        main, ["demo", "live", "--speed", "60", "--duration", "3", "--seed", "1"],
        env={"GRIDWATCH_DATABASE_URL": county_url},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "demo live stopped" in result.output and "0 errors" in result.output


def test_sigterm_stops_it_cleanly(county_url):
    env = os.environ | {"GRIDWATCH_DATABASE_URL": county_url, "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "demo", "live", "--speed", "60"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "demo live:" in process.stdout.readline()
        time.sleep(2)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "demo live stopped" in output and "0 errors" in output
    with psycopg.connect(county_url) as conn:  # nothing left half done: no open transaction
        assert (
            conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = {} AND state LIKE 'idle in%%'"
                ).format(sql.Literal(county_url.rsplit("/", 1)[1]))
            ).fetchone()[0]
            == 0
        )


def test_it_keeps_only_a_demo_county_alive(database_url):
    """A county's own data (here the small test county, which has no demo accounts) never gets
    invented reports, even with GRIDWATCH_DEMO_LIVE set by mistake."""
    result = CliRunner().invoke(
        main, ["demo", "live", "--duration", "1"], env={"GRIDWATCH_DATABASE_URL": database_url}
    )
    assert result.exit_code == 1 and "gridwatch demo load" in result.output
    with psycopg.connect(database_url) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM incident_events WHERE at > now() - interval '1 hour'"
            ).fetchone()[0]
            == 0
        )


# -- beside the servers: GRIDWATCH_DEMO_LIVE --------------------------------------------------


def test_serve_starts_it_beside_the_servers_when_asked(monkeypatch):
    started = {}

    def fake_supervise(commands, helpers=(), env=None):
        started.update(commands=commands, helpers=helpers, env=env)
        return 0

    monkeypatch.setattr("server.cli.supervise", fake_supervise)
    monkeypatch.delenv("GRIDWATCH_EVENTS_PORT", raising=False)
    env = {"GRIDWATCH_DATABASE_URL": "postgresql://unused", "GRIDWATCH_DEMO_LIVE": "1",
           "GRIDWATCH_DEMO_LIVE_SPEED": "30"}  # fmt: skip
    assert CliRunner().invoke(main, ["serve"], env=env).exit_code == 0
    assert [helper[-4:] for helper in started["helpers"]] == [["demo", "live", "--speed", "30.0"]]
    # The children learn the feed's port; the caller's environment is left alone (it leaked
    # into every server a later test started, and put their feeds on 8001).
    assert started["env"]["GRIDWATCH_EVENTS_PORT"] == "8001"
    assert "GRIDWATCH_EVENTS_PORT" not in os.environ
    started.clear()
    assert CliRunner().invoke(main, ["serve"], env=env | {"GRIDWATCH_DEMO_LIVE": "0"}).exit_code == 0
    assert started["helpers"] == []


def test_a_helper_stops_with_the_servers_and_its_end_stops_nothing():
    begun = time.monotonic()
    assert supervise([["sleep", "0.5"]], helpers=[["sleep", "30"]]) == 1  # the server ended: all stop
    assert time.monotonic() - begun < 10
    begun = time.monotonic()
    assert supervise([["sleep", "1.5"]], helpers=[["false"]]) == 1  # the helper's end changed nothing
    assert time.monotonic() - begun >= 1.4
