"""The monthly leader report (GET /api/v1/analytics/report, `gridwatch report`) on a demo county:
its figures are the analytics API's, it holds no personal data, a township's report holds only
that township, and bad input is a clear error that leaves no file behind."""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import psycopg
import pytest
from click.testing import CliRunner
from database_support import database_with
from tiles_support import bearer, token_for

from server.app import create_app
from server.cli import main
from server.demo import load_demo
from server.settings import Settings

CHINA = ZoneInfo("Asia/Shanghai")
UNTIL = datetime(2026, 6, 1, tzinfo=CHINA)
MAY = {"from": "2026-05-01", "to": "2026-06-01"}
BULLETIN = ("received", "filed", "due", "closed", "closed_on_time", "closure_rate", "on_time_rate")


@pytest.fixture(scope="module")
def report_url(pg_cluster):
    load = functools.partial(load_demo, seed=11, incident_count=6000, until=UNTIL)
    with database_with(pg_cluster, "gridwatch_leader_report_module", load) as url:
        yield url


@pytest.fixture(scope="module")
def client(report_url, tmp_path_factory):
    app = create_app(
        Settings(database_url=report_url, var_dir=tmp_path_factory.mktemp("var"), secret_key="t")
    )
    yield app.test_client()
    app.extensions["gridwatch.db"].close()


@pytest.fixture(scope="module")
def leader(report_url):
    return bearer(token_for(report_url, "demo_leader"))


@pytest.fixture(scope="module")
def county_report(client, leader):
    response = client.get("/api/v1/analytics/report", query_string=MAY, headers=leader)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def figures_in(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="report-figures">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def table(html: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def api_totals(client, headers, **params) -> dict:
    response = client.get("/api/v1/analytics/response", query_string={**MAY, **params}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_the_bulletin_equals_the_analytics_api_for_the_period_and_both_comparisons(
    client, leader, county_report
):
    html = county_report.get_data(as_text=True)
    figures = figures_in(html)["bulletin"]
    previous = api_totals(client, leader, by="township", compare="previous")["totals"]
    last_year = api_totals(client, leader, by="township", compare="last_year")["totals"]
    for name in BULLETIN:
        assert figures["current"][name] == previous[name], name
        assert figures["previous"][name] == previous["compare"][name], name
        assert figures["last_year"][name] == last_year["compare"][name], name
    assert figures["current"]["due"] > 0
    # The sentence a leader reads carries the same numbers.
    line = re.search(r'id="bulletin-line">(.*?)</p>', html, re.S).group(1)
    assert f"接报事件{previous['received']:,}件" in line
    assert f"结案率{previous['closure_rate'] * 100:.2f}%" in line


def test_the_townships_are_ranked_with_the_api_s_on_time_rates(client, leader, county_report):
    rows = {row["name"]: row for row in api_totals(client, leader, by="township")["rows"] if row["due"]}
    ranked = table(county_report.get_data(as_text=True), "units-table")
    assert [cells[1] for cells in ranked] == sorted(
        rows, key=lambda n: (-(rows[n]["on_time_rate"] or 0), -rows[n]["due"], rows[n]["code"])
    )
    for cells in ranked:
        assert cells[6] == f"{rows[cells[1]]['on_time_rate'] * 100:.2f}%"


def test_the_file_is_a_named_download_and_carries_its_own_code(county_report):
    disposition = county_report.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "2026-05-01-2026-05-31" in disposition
    html = county_report.get_data(as_text=True)
    assert "L.map(" in html and "Plotly.newPlot" in html
    # Nothing is fetched from outside the file: no script or stylesheet by address.
    assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', html)


def test_no_reporter_name_or_phone_is_in_the_file(report_url, county_report):
    html = county_report.get_data(as_text=True)
    with psycopg.connect(report_url) as conn:
        people = conn.execute(
            """SELECT DISTINCT unnest(ARRAY[reporter_name, reporter_phone]) FROM incidents
                WHERE reporter_name IS NOT NULL OR reporter_phone IS NOT NULL"""
        ).fetchall()
    values = [value for (value,) in people if value and len(value) >= 2]
    assert values, "the demo names its reporters"
    assert not [value for value in values if value in html]


def test_a_township_report_holds_only_that_township(client, leader, report_url):
    with psycopg.connect(report_url) as conn:
        code, name = conn.execute(
            "SELECT code, name_zh FROM grids WHERE level = 'township' ORDER BY code LIMIT 1"
        ).fetchone()
        village_names = """SELECT name_zh FROM grids WHERE level = 'village'
                              AND path <@ (SELECT path FROM grids WHERE code = %s)"""
        villages = {n for (n,) in conn.execute(village_names, [code])}
        others = [
            n
            for (n,) in conn.execute(
                "SELECT name_zh FROM grids WHERE level = 'township' AND code <> %s", [code]
            )
        ]
    response = client.get("/api/v1/analytics/report", query_string={**MAY, "grid": code}, headers=leader)
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    assert figures_in(html)["area"] == code
    assert f"<h1>{name}" in html
    listed = {cells[1] for cells in table(html, "units-table")}
    assert listed and listed <= villages
    totals = api_totals(client, leader, by="village", parent=code)["totals"]
    assert {k: figures_in(html)["bulletin"]["current"][k] for k in BULLETIN} == {
        k: totals[k] for k in BULLETIN
    }
    # The overdue cases and the slowest grids are this township's too.
    assert all(cells[2] == name for cells in table(html, "overdue-table") if len(cells) > 2)
    assert not [other for other in others if other in html]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"from": "2026-05-01", "to": "2026-04-01"}, 400, "to"),
        ({"from": "2006-01-01", "to": "2026-01-01"}, 400, "to"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, 400, "to"),
        ({**MAY, "grid": "NO-SUCH-GRID"}, 404, "grid"),
        ({**MAY, "grid": "bad code!"}, 400, "grid"),
        ({**MAY, "lang": "fr"}, 400, "lang"),
        ({**MAY, "descripton": "typo"}, 422, "descripton"),  # unknown: refused
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client, leader, params, status, field):
    response = client.get("/api/v1/analytics/report", query_string=params, headers=leader)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["field"] == field


def test_a_finest_grid_has_no_report_and_only_county_wide_roles_get_one(client, leader, report_url):
    with psycopg.connect(report_url) as conn:
        (grid,) = conn.execute("SELECT code FROM grids WHERE level = 'grid' ORDER BY code LIMIT 1").fetchone()
    response = client.get("/api/v1/analytics/report", query_string={**MAY, "grid": grid}, headers=leader)
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "grid"
    for name in ("demo_inspector", "demo_department"):
        headers = bearer(token_for(report_url, name))
        assert client.get("/api/v1/analytics/report", query_string=MAY, headers=headers).status_code == 403
    operator = bearer(token_for(report_url, "demo_operator"))
    assert client.get("/api/v1/analytics/report", query_string=MAY, headers=operator).status_code == 200


def test_the_command_writes_the_file_and_refuses_bad_input_without_leaving_one(report_url, tmp_path):
    def run(*args):
        return CliRunner().invoke(main, ["report", *args], env={"GRIDWATCH_DATABASE_URL": report_url})

    out = tmp_path / "may.html"
    result = run("--from", "2026-05-01", "--to", "2026-06-01", "--out", str(out), "--lang", "en")
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert '<html lang="en">' in html and "On-time rate" in html
    assert figures_in(html)["from"] == "2026-05-01"

    for args, message in [
        (("--from", "2026-05-01", "--to", "2026-04-01"), "to must be after from"),
        (("--from", "2026-05-01", "--to", "2026-06-01", "--grid", "NO-SUCH-GRID"), "no grid"),
    ]:
        bad = tmp_path / "bad.html"
        result = run(*args, "--out", str(bad))
        assert result.exit_code != 0 and message in result.output
        assert not bad.exists()
    result = run("--out", str(tmp_path / "no-such-folder" / "r.html"))
    assert result.exit_code != 0 and "does not exist" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["may.html"]  # no temporary file left
