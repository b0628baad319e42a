"""The `gridwatch` command line against the test database, and `gridwatch serve` under gunicorn."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from server_support import free_port, running_server

from server.cli import main
from server.db.migrate import discover


def run_cli(database_url: str, *args: str):
    return CliRunner().invoke(main, list(args), env={"GRIDWATCH_DATABASE_URL": database_url})


def test_db_status_reports_the_schema_version(database_url):
    result = run_cli(database_url, "db", "status")
    assert result.exit_code == 0, result.output
    assert f"schema version {discover()[-1].version}" in result.output


def test_db_migrate_on_an_empty_database_applies_everything_once(empty_database_url):
    first = run_cli(empty_database_url, "db", "migrate")
    assert first.exit_code == 0, first.output
    assert "applied 0042_baseline_0_1.sql" in first.output
    second = run_cli(empty_database_url, "db", "migrate")
    assert second.exit_code == 0
    assert "applied" not in second.output


def test_db_status_fails_clearly_when_unreachable():
    result = run_cli("postgresql://nobody@127.0.0.1:1/none", "db", "status")
    assert result.exit_code == 1
    assert "database unavailable" in result.output


def test_serve_runs_gunicorn_and_answers_health(database_url, tmp_path: Path):
    def command(port: int) -> list[str]:
        gridwatch = Path(sys.executable).with_name("gridwatch")
        return [
            str(gridwatch),
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--events-port",
            str(free_port()),
        ]

    access_log = tmp_path / "access.log"
    with running_server(command, database_url=database_url, var_dir=tmp_path, output=access_log) as base:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            body = json.load(response)
            health_headers = response.headers
        with urllib.request.urlopen(f"{base}/dashboard/login", timeout=30) as response:
            page_headers = response.headers
        try:
            urllib.request.urlopen(
                f"{base}/open311/v2/requests.json?api_key=SECRET-KEY-123&status=open", timeout=5
            )
        except urllib.error.HTTPError as refused:
            assert refused.code == 403
    assert body["status"] == "ok"
    assert body["counts"]["grids"] == 8
    # Every answer: no sniffing, no full URLs to other sites; pages: not to be framed.
    for headers in (health_headers, page_headers):
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
    # Pages: scripts only from gridwatch and the inline ones it knows by hash, never framed.
    policy = dict(
        directive.strip().split(" ", 1) for directive in page_headers["Content-Security-Policy"].split(";")
    )
    script_sources = policy["script-src"].split()
    assert script_sources[0] == "'self'" and len(script_sources) > 2
    assert all(source.startswith("'sha256-") for source in script_sources[1:])
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert policy["connect-src"].split()[1].startswith("http://127.0.0.1:")  # the change feed
    assert page_headers["X-Frame-Options"] == "DENY"
    # The access log names the request but not its credential.
    log = access_log.read_text()
    assert "/open311/v2/requests.json?api_key=[redacted]&status=open" in log
    assert "SECRET-KEY-123" not in log


def test_tiles_prune_changes_keeps_recent_events(database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO tiles.change_events (at, kind, incident_id) VALUES"
            " (now() - interval '40 days', 'created', 1), (now() - interval '1 day', 'changed', 1)"
        )
        before = conn.execute("SELECT count(*) FROM tiles.change_events").fetchone()[0]
    result = run_cli(database_url, "tiles", "prune-changes", "--days", "30")
    assert result.exit_code == 0, result.output
    assert "removed 1 change-feed events" in result.output
    with psycopg.connect(database_url) as conn:
        remaining = conn.execute(
            "SELECT min(at) > now() - interval '30 days', count(*) FROM tiles.change_events"
        )
        newest_kept, count = remaining.fetchone()
    assert newest_kept and count == before - 1


def test_demo_load_names_a_category_without_a_department_and_writes_nothing(database_url):
    """An admin may save a category without a default department; the demo, which dispatches
    every case to one, refuses with the category's name instead of failing halfway."""
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE categories SET default_department_id = NULL WHERE code = 'sanitation'")
        grids_before = conn.execute("SELECT count(*) FROM grids").fetchone()[0]
    result = run_cli(database_url, "demo", "load", "--incidents", "100")
    assert result.exit_code != 0
    assert "sanitation" in result.output and "default department" in result.output
    assert "Traceback" not in result.output
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM grids").fetchone()[0] == grids_before


@pytest.mark.parametrize("kind", ["grids", "incidents"])
def test_an_import_of_a_missing_file_names_it_without_a_traceback(database_url, tmp_path, kind):
    missing = tmp_path / "县网格.gpkg"
    result = run_cli(database_url, "import", kind, str(missing))
    assert result.exit_code == 2
    assert "县网格.gpkg" in result.output and "does not exist" in result.output
    assert (
        "Traceback" not in result.output
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
