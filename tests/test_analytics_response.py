"""The response indicators (`/api/v1/analytics/response`) against an independent computation of
docs/analytics.md's definitions: every incident of the demo county read into Python, each
indicator counted there (numpy for the percentiles), per township, department and village."""

from __future__ import annotations

import csv
import functools
import io
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from database_support import database_with
from openpyxl import load_workbook
from psycopg.rows import dict_row
from tiles_support import bearer, token_for

from server.analytics.response import COUNTS, INDICATORS, RATES
from server.analytics.views import COLUMNS
from server.app import create_app
from server.demo import load_demo
from server.settings import Settings

CHINA = ZoneInfo("Asia/Shanghai")
UNTIL = datetime(2026, 6, 1, tzinfo=CHINA)
AS_OF = datetime(2026, 5, 20, 10, 0, tzinfo=CHINA)
MAY = {"from": "2026-05-01", "to": "2026-06-01", "as_of": AS_OF.isoformat()}


@pytest.fixture(scope="module")
def analytics_url(pg_cluster):
    load = functools.partial(load_demo, seed=7, incident_count=6000, until=UNTIL)
    with database_with(pg_cluster, "gridwatch_analytics_module", load) as url:
        yield url


@pytest.fixture(scope="module")
def api(analytics_url, tmp_path_factory):
    app = create_app(
        Settings(database_url=analytics_url, var_dir=tmp_path_factory.mktemp("var"), secret_key="t")
    )
    leader = bearer(token_for(analytics_url, "demo_leader"))
    client = app.test_client()

    def get(**params):
        response = client.get("/api/v1/analytics/response", query_string=params, headers=leader)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response

    yield get
    app.extensions["gridwatch.db"].close()


def _cases(url: str) -> list[dict]:
    """Every incident with its township, village and department codes, and for categories whose
    limits run in working time its working hours to accept and to close, counted day by day."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        cases = conn.execute(
            """SELECT i.*, t.code AS township, v.code AS village, d.code AS department,
                      c.time_limit_unit = 'working' AS in_working_time
                 FROM incidents i
                 JOIN categories c ON c.code = i.category_code
                 JOIN grids g ON g.id = i.grid_id
                 JOIN grids t ON t.level = 'township' AND g.path <@ t.path
                 JOIN grids v ON v.level = 'village' AND g.path <@ v.path
                 LEFT JOIN departments d ON d.id = i.department_id"""
        ).fetchall()
        calendar = conn.execute("SELECT time_zone, working_weekdays FROM work_calendar").fetchone()
        periods = [
            (r["starts"], r["ends"]) for r in conn.execute("SELECT * FROM work_periods ORDER BY starts")
        ]
        exceptions = {r["day"]: r["working"] for r in conn.execute("SELECT * FROM work_calendar_days")}
    zone = ZoneInfo(calendar["time_zone"])

    def working_hours(start, end):
        total, day = 0.0, start.astimezone(zone).date()
        while day <= end.astimezone(zone).date():
            if exceptions.get(day, day.isoweekday() in calendar["working_weekdays"]):
                for opens, closes in periods:
                    overlap = min(end, datetime.combine(day, closes, zone)) - max(
                        start, datetime.combine(day, opens, zone)
                    )
                    total += max(overlap.total_seconds(), 0)
            day += timedelta(days=1)
        return total / 3600

    for case in cases:
        for name, moment in (("accept_wh", case["accepted_at"]), ("close_wh", case["closed_at"])):
            case[name] = (
                working_hours(case["reported_at"], moment) if case["in_working_time"] and moment else None
            )
    return cases


def expected(cases: list[dict], key: str, start: datetime, end: datetime, as_of: datetime) -> dict:
    """The definitions of docs/analytics.md, case by case."""

    def before(moment, limit):
        return moment is not None and moment <= limit

    groups: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for case in cases:
        figures = groups[case[key]]
        received = start <= case["reported_at"] < end and case["reported_at"] <= as_of
        rejected_by_then = before(case["rejected_at"], as_of)
        due = not rejected_by_then and case["due_at"] is not None and start <= case["due_at"] < end
        closed = due and before(case["closed_at"], as_of)
        backlog = (
            case["reported_at"] <= as_of and not before(case["closed_at"], as_of) and not rejected_by_then
        )
        flags = {
            "received": received,
            "filed": received and before(case["accepted_at"], as_of),
            "rejected": received and rejected_by_then,
            "due": due,
            "closed": closed,
            "closed_on_time": closed and case["closed_at"] <= case["due_at"],
            "registered": backlog and case["status"] == "registered" and before(case["registered_at"], as_of),
            "backlog": backlog,
            "overdue": backlog and case["due_at"] is not None and case["due_at"] < as_of,
            "rework": due and case["rework_count"] > 0,
            "self_handled": received and case["self_handled"],
            "rated": closed and before(case["rated_at"], as_of),
        }
        for name, holds in flags.items():
            figures[name].append(holds)
        if flags["filed"]:
            figures["accept_h"].append((case["accepted_at"] - case["reported_at"]).total_seconds() / 3600)
        if closed:
            figures["close_h"].append((case["closed_at"] - case["reported_at"]).total_seconds() / 3600)
        if flags["filed"] and case["accept_wh"] is not None:
            figures["accept_wh"].append(case["accept_wh"])
        if closed and case["close_wh"] is not None:
            figures["close_wh"].append(case["close_wh"])
        if backlog:
            figures["age_h"].append((as_of - case["reported_at"]).total_seconds() / 3600)
        if flags["rated"]:
            figures["rating"].append(case["rating"])

    def percentile(values, q):
        return float(np.percentile(values, q)) if values else None

    def share(part, whole):
        return sum(part) / sum(whole) if sum(whole) else None

    out = {}
    for code, f in groups.items():
        out[code] = {name: sum(f[name]) for name in COUNTS}
        out[code].update(
            closure_rate=share(f["closed"], f["due"]),
            on_time_rate=share(f["closed_on_time"], f["due"]),
            median_accept_h=percentile(f["accept_h"], 50),
            p90_accept_h=percentile(f["accept_h"], 90),
            median_close_h=percentile(f["close_h"], 50),
            p90_close_h=percentile(f["close_h"], 90),
            median_accept_wh=percentile(f["accept_wh"], 50),
            p90_accept_wh=percentile(f["accept_wh"], 90),
            median_close_wh=percentile(f["close_wh"], 50),
            p90_close_wh=percentile(f["close_wh"], 90),
            backlog_median_age_h=percentile(f["age_h"], 50),
            self_handled_share=share(f["self_handled"], f["received"]),
            rating_mean=float(np.mean(f["rating"])) if f["rating"] else None,
            rated_share=share(f["rated"], f["closed"]),
        )
    return out


def assert_figures(row: dict, wanted: dict | None) -> None:
    for name in INDICATORS:
        value = None if wanted is None else wanted[name]
        if name in COUNTS:
            assert row[name] == (value or 0), (row["code"], name)
        elif value is None:
            assert row[name] is None, (row["code"], name)
        else:
            tolerance = 1e-4 if name in RATES else 0.01
            assert row[name] == pytest.approx(value, abs=tolerance), (row["code"], name)


def test_township_figures_equal_the_definitions(api, analytics_url):
    body = api(by="township", **MAY).get_json()
    cases = _cases(analytics_url)
    wanted = expected(cases, "township", datetime(2026, 5, 1, tzinfo=CHINA), UNTIL, AS_OF)
    assert len(body["rows"]) >= 5
    for row in body["rows"]:
        assert_figures(row, wanted.get(row["code"]))
    assert body["totals"]["received"] == sum(w["received"] for w in wanted.values()) > 100
    assert body["totals"]["due"] > 0 and body["totals"]["backlog"] > 0 and body["totals"]["closed"] > 0
    # Working time runs only in office hours: a working-time case closes in fewer working hours.
    assert 0 < body["totals"]["median_close_wh"] < body["totals"]["median_close_h"]
    assert body["parameters"]["from"] == "2026-05-01" and body["parameters"]["time_zone"] == "Asia/Shanghai"


def test_department_figures_equal_the_definitions(api, analytics_url):
    body = api(by="department", **MAY).get_json()
    wanted = expected(_cases(analytics_url), "department", datetime(2026, 5, 1, tzinfo=CHINA), UNTIL, AS_OF)
    assert {row["code"] for row in body["rows"]} >= {code for code in wanted if code}
    for row in body["rows"]:
        assert_figures(row, wanted.get(row["code"]))


def test_a_drilled_down_township_lists_its_villages(api, analytics_url):
    townships = api(by="township", **MAY).get_json()["rows"]
    busiest = max(townships, key=lambda row: row["received"])["code"]
    body = api(by="village", parent=busiest, **MAY).get_json()
    cases = [case for case in _cases(analytics_url) if case["township"] == busiest]
    wanted = expected(cases, "village", datetime(2026, 5, 1, tzinfo=CHINA), UNTIL, AS_OF)
    assert body["rows"] and set(wanted) <= {row["code"] for row in body["rows"]}
    for row in body["rows"]:
        assert_figures(row, wanted.get(row["code"]))
    assert body["totals"]["received"] == next(r for r in townships if r["code"] == busiest)["received"]


def test_compare_holds_the_same_query_on_the_other_period(api):
    for compare, params in (
        ("previous", {"from": "2026-04-01", "to": "2026-05-01", "as_of": "2026-04-20T10:00:00+08:00"}),
        ("last_year", {"from": "2025-05-01", "to": "2025-06-01", "as_of": "2025-05-20T10:00:00+08:00"}),
    ):
        compared = api(by="township", compare=compare, **MAY).get_json()
        other = api(by="township", **params).get_json()
        assert compared["parameters"]["compared"]["from"] == params["from"]
        others = {row["code"]: row for row in other["rows"]}
        for row in compared["rows"]:
            assert row["compare"] == {name: others[row["code"]][name] for name in INDICATORS}
            if row["received"] is not None and row["compare"]["received"] is not None:
                assert row["change"]["received"] == row["received"] - row["compare"]["received"]
        assert compared["totals"]["compare"]["received"] == other["totals"]["received"]


def test_csv_and_xlsx_hold_the_json_rows(api):
    body = api(by="township", **MAY).get_json()
    raw = api(by="township", format="csv", **MAY)
    assert raw.mimetype == "text/csv" and raw.data.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(raw.data.decode("utf-8-sig"))))
    assert table[0][:4] == ["编码", "名称", "接报数", "立案数"]
    assert [line[0] for line in table[1:-1]] == [row["code"] for row in body["rows"]]
    assert table[-1][1] == "合计" and int(table[-1][2]) == body["totals"]["received"]
    for line, row in zip(table[1:], body["rows"], strict=False):
        assert int(line[COLUMNS.index(next(c for c in COLUMNS if c.key == "due"))]) == row["due"]

    workbook = load_workbook(io.BytesIO(api(by="township", format="xlsx", **MAY).data))
    sheet = workbook.active
    assert "2026-05-01" in sheet["A1"].value and "2026-05-31" in sheet["A1"].value
    header = [cell.value for cell in sheet[2]]
    assert header[: len(COLUMNS)] == [column.zh for column in COLUMNS]
    rate_column = header.index("结案率") + 1
    for index, row in enumerate(body["rows"], start=3):
        assert sheet.cell(index, 1).value == row["code"]
        assert sheet.cell(index, 3).value == row["received"]  # a number, not text
        assert sheet.cell(index, rate_column).value == row["closure_rate"]
        assert sheet.cell(index, rate_column).number_format == "0.00%"
    english = load_workbook(io.BytesIO(api(by="township", format="xlsx", lang="en", **MAY).data)).active
    assert english.cell(2, 3).value == "Received" and "Response indicators" in english["A1"].value


def test_the_scope_limits_an_inspector_to_their_grids(analytics_url, tmp_path):
    app = create_app(Settings(database_url=analytics_url, var_dir=tmp_path, secret_key="t"))
    try:
        with psycopg.connect(analytics_url, row_factory=dict_row) as conn:
            member = conn.execute(
                """SELECT u.username, count(i.id) AS n FROM users u JOIN grids g ON g.member_id = u.id
                     JOIN incidents i ON i.grid_id = g.id
                    WHERE u.role = 'inspector' AND i.reported_at >= '2023-06-01 00:00+08'
                    GROUP BY u.username ORDER BY 2 DESC LIMIT 1"""
            ).fetchone()
        client = app.test_client()
        inspector = client.get(
            "/api/v1/analytics/response",
            query_string={"by": "township", "from": "2023-06-01", "to": "2026-06-01"},
            headers=bearer(token_for(analytics_url, member["username"])),
        ).get_json()
        assert inspector["totals"]["received"] == member["n"]
        assert sum(row["received"] for row in inspector["rows"]) == member["n"]
        assert client.get("/api/v1/analytics/response").status_code == 401
    finally:
        app.extensions["gridwatch.db"].close()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"by": "household"}, "by"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "²⁰²⁶-05-01"}, "from"),
        ({"from": "0001-01-01"}, "from"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "to"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"category": "Sanitation;drop"}, "category"),
        ({"parent": "no-such-grid"}, "parent"),
        ({"compare": "forever"}, "compare"),
        ({"format": "pdf"}, "format"),
        ({"bye": "township"}, "bye"),
    ],
)
def test_bad_parameters_are_400s_naming_the_field(analytics_url, tmp_path, params, field):
    app = create_app(Settings(database_url=analytics_url, var_dir=tmp_path, secret_key="t"))
    try:
        response = app.test_client().get(
            "/api/v1/analytics/response",
            query_string=params,
            headers=bearer(token_for(analytics_url, "demo_leader")),
        )
        assert response.status_code in (400, 404, 422), response.get_data(as_text=True)  # 422: unknown
        assert response.get_json()["error"]["field"] == field
    finally:
        app.extensions["gridwatch.db"].close()


def test_the_query_model_is_the_openapi_entry(api, analytics_url, tmp_path):
    app = create_app(Settings(database_url=analytics_url, var_dir=tmp_path, secret_key="t"))
    try:
        document = app.test_client().get("/api/v1/openapi.json").get_json()
        entry = document["paths"]["/analytics/response"]["get"]
        names = {parameter["name"] for parameter in entry["parameters"]}
        assert names == {"by", "from", "to", "as_of", "category", "parent", "compare", "format", "lang"}
        by = next(p for p in entry["parameters"] if p["name"] == "by")
        assert by["schema"]["enum"] == ["grid", "village", "township", "department", "category"]
    finally:
        app.extensions["gridwatch.db"].close()


def test_the_columns_name_every_indicator():
    assert [column.key for column in COLUMNS[2:]] == list(INDICATORS)
    assert {column.key for column in COLUMNS if column.kind == "rate"} == set(RATES)


def test_the_monthly_series_equals_the_indicators_of_each_month(analytics_url):
    """The trend charts' months hold the same received, due, closed and on-time counts as the
    bulletin's indicators for that month alone."""
    from datetime import date

    from server.analytics.period import Period
    from server.analytics.response import Selection, response_rows
    from server.analytics.trends import monthly
    from server.auth.scope import SEES_ALL

    with psycopg.connect(analytics_url, row_factory=dict_row) as conn:
        period = Period.of(start=date(2026, 5, 1), end=None, as_of=AS_OF, zone=CHINA)
        series = monthly(
            conn, Selection("township", period, SEES_ALL), first_month=date(2026, 2, 1), months=4, as_of=AS_OF
        )
        for point in series:
            first = date.fromisoformat(point["month"] + "-01")
            one = Period.of(start=first, end=None, as_of=AS_OF, zone=CHINA)
            totals = response_rows(conn, Selection("township", one, SEES_ALL))["totals"]
            assert {key: point[key] for key in ("received", "due", "closed", "closed_on_time")} == {
                key: totals[key] for key in ("received", "due", "closed", "closed_on_time")
            }
        assert sum(point["received"] for point in series) > 100


def test_a_compiled_statement_serves_every_selection_of_its_shape(analytics_url):
    """response_rows compiles its statement once per shape and binds each selection's values by
    name: two selections of one shape (other period, categories, parent, scope grids) must give
    the same text, with the values of each in exactly the named parameters."""
    from datetime import date

    from server.analytics.period import Period
    from server.analytics.response import (
        Selection,
        _checked_parent,
        indicator_statement,
        period_values,
        selection_values,
        statement_shape,
    )
    from server.analytics.tables import compiled
    from server.analytics.working_hours import WorkClock
    from server.auth.scope import GRIDS, Scope

    with psycopg.connect(analytics_url, row_factory=dict_row) as conn:
        townships = [
            r["code"] for r in conn.execute("SELECT code FROM grids WHERE level = 'township' LIMIT 2")
        ]
        grid_ids = [r["id"] for r in conn.execute("SELECT id FROM grids WHERE level = 'grid' LIMIT 5")]

        def statement(start: date, categories: tuple, parent: str, grids: list[int], as_of: datetime):
            period = Period.of(start=start, end=None, as_of=as_of, zone=CHINA)
            selection = Selection(
                "village", period, Scope(GRIDS, grid_ids=frozenset(grids)), categories, parent
            )
            parent_row = _checked_parent(conn, selection)
            clock = WorkClock.read(conn, first=period.starts_at, last=period.as_of)
            text, params = compiled(indicator_statement(selection, parent_row, clock))
            values = {**period_values(period), **clock.values(), **selection_values(selection, parent_row)}
            return statement_shape(selection), text, params, values

        first = statement(date(2026, 5, 1), ("sanitation",), townships[0], grid_ids[:3], AS_OF)
        second = statement(
            date(2025, 2, 1), ("dispute", "epidemic"), townships[1], grid_ids[2:], AS_OF - timedelta(days=3)
        )
    (shape_a, text_a, params_a, values_a), (shape_b, text_b, params_b, values_b) = first, second
    assert shape_a == shape_b and text_a == text_b
    assert values_a.keys() == values_b.keys()
    for name, value in values_a.items():
        assert params_a[name] == value and params_b[name] == values_b[name]
        assert value != values_b[name] or name == "working_categories", name
    assert {k: v for k, v in params_a.items() if k not in values_a} == {
        k: v for k, v in params_b.items() if k not in values_b
    }


def test_the_backlog_conditions_match_their_indexes(analytics_url):
    """The conditions that find the cases open at ``as_of`` are written in response.py and, as
    index expressions and predicates, in sql/: with sequential scans off, the planner must reach
    each index through its condition (a drifted expression could not)."""
    from sqlalchemy import select

    from server.analytics.response import FINAL, _finished_after
    from server.analytics.tables import compiled, incidents

    conditions = {
        "incidents_finished_reported_idx": _finished_after(AS_OF),
        "incidents_open_due_idx": incidents.c.status.notin_(FINAL),
    }
    with psycopg.connect(analytics_url) as conn:
        conn.execute("SET enable_seqscan = off")
        for index, condition in conditions.items():
            text, params = compiled(select(incidents.c.id).where(condition))
            plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + text, params))
            assert index in plan, plan
