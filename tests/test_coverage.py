"""Coverage gaps (`GET /api/v1/analytics/coverage`) on the small county: 8 grids, inspector1
holds the first two, inspector2 the third, the rest have no member; no patrols yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from scipy.stats import poisson
from test_patrols import MINE, THEIRS, bearer, walk

from server.analytics.coverage import QUIET_P, grid_status


def coverage(client, token, **params) -> dict:
    response = client.get("/api/v1/analytics/coverage", query_string=params, headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def by_unit(body: dict) -> dict:
    return {feature["properties"]["unit"]: feature["properties"] for feature in body["features"]}


def test_a_patrol_over_the_api_makes_its_grid_patrolled(client, tokens):
    before = by_unit(coverage(client, tokens["leader1"]))
    assert len(before) == 8
    assert before[MINE]["status"] == "unpatrolled" and before[MINE]["member"] == "张网格"
    assert sum(p["status"] == "no_member" for p in before.values()) == 5

    filed = client.post("/api/v1/patrols", json=walk(), headers=bearer(tokens["inspector1"]))
    assert filed.status_code == 201
    after = coverage(client, tokens["leader1"])
    mine = by_unit(after)[MINE]
    assert mine["patrolled"] and mine["patrols"] == 1 and mine["days_since_patrol"] == 0
    assert mine["status"] == "ok"
    assert after["totals"] == {"no_member": 5, "unpatrolled": 2, "quiet": 0, "ok": 1}
    # Names of members are for the roles that see them on the map; a department handler does not.
    assert by_unit(coverage(client, tokens["handler1"]))[MINE]["member"] is None
    assert client.get("/api/v1/analytics/coverage").status_code == 401


def test_a_grid_whose_member_is_removed_has_no_member(client, tokens, conn):
    assert by_unit(coverage(client, tokens["leader1"]))[THEIRS]["status"] == "unpatrolled"
    conn.execute("UPDATE grids SET member_id = NULL WHERE code = %s", [THEIRS])
    conn.commit()
    assert by_unit(coverage(client, tokens["leader1"]))[THEIRS]["status"] == "no_member"


def test_a_patrolled_grid_with_far_fewer_reports_than_its_township_is_quiet(client, tokens, conn):
    # Thirty reports this week in inspector1's other grid, none in MINE, which is patrolled.
    now = datetime.now(UTC)
    conn.execute(
        """INSERT INTO incidents (geom, grid_id, category_code, channel, reported_at)
           SELECT ST_PointOnSurface(g.geom), g.id, 'sanitation', 'app', %s - n * interval '1 hour'
             FROM grids g, generate_series(1, 30) AS n WHERE g.code = '511423001001002'""",
        [now],
    )
    conn.commit()
    assert (
        client.post("/api/v1/patrols", json=walk(), headers=bearer(tokens["inspector1"])).status_code == 201
    )
    body = coverage(client, tokens["leader1"])
    mine = by_unit(body)[MINE]
    assert mine["reports"] == 0 and mine["expected_reports"] > 3
    assert mine["quiet_chance"] == pytest.approx(poisson.cdf(0, mine["expected_reports"]), rel=1e-3)
    assert mine["status"] == "quiet" and body["totals"]["quiet"] == 1


def test_the_grid_status_rule():
    assert grid_status(has_member=False, patrols=9, reports=9, expected=1)[0] == "no_member"
    assert grid_status(has_member=True, patrols=0, reports=9, expected=1)[0] == "unpatrolled"
    assert grid_status(has_member=True, patrols=2, reports=0, expected=0.5)[0] == "ok"  # too few to tell
    status, chance = grid_status(has_member=True, patrols=2, reports=1, expected=8)
    assert status == "quiet" and chance == pytest.approx(poisson.cdf(1, 8)) and chance < QUIET_P


def test_townships_summarise_their_grids(client, tokens):
    body = coverage(client, tokens["leader1"], level="township", days=30)
    townships = by_unit(body)
    assert set(townships) == {"511423001", "511423002"}
    first = townships["511423001"]
    assert first["grids"] == 4 and first["grids_by_status"] == {
        "no_member": 1,
        "unpatrolled": 3,
        "quiet": 0,
        "ok": 0,
    }
    assert first["status"] == "unpatrolled"
    assert townships["511423002"]["status"] == "no_member"


def test_the_partition_gaps_of_the_last_import_are_listed(client, tokens, conn):
    conn.execute(
        """INSERT INTO partition_gaps (parent_code, bordering, area_m2, lon, lat, found_at)
           VALUES ('511423001', '{511423001001,511423001002}', 1234.6, 103.31, 29.9, %s)""",
        [datetime.now(UTC) - timedelta(days=1)],
    )
    conn.commit()
    gaps = coverage(client, tokens["leader1"])["gaps"]
    assert gaps == [
        {
            "parent": "511423001",
            "parent_name": "测试镇1",
            "bordering": ["511423001001", "511423001002"],
            "area_m2": 1235,
            "lon": 103.31,
            "lat": 29.9,
            "found_at": gaps[0]["found_at"],
        }
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"days": "0"}, "days"), ({"days": "²"}, "days"), ({"level": "county"}, "level"), ({"x": "1"}, "x")],
)
def test_bad_coverage_parameters_name_the_field(client, tokens, params, field):
    response = client.get(
        "/api/v1/analytics/coverage", query_string=params, headers=bearer(tokens["leader1"])
    )
    unknown = field == "x"  # a parameter the endpoint does not have: 422, never ignored
    assert (
        response.status_code == (422 if unknown else 400) and response.get_json()["error"]["field"] == field
    )
