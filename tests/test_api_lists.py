"""Lists over HTTP: incident filters, cursor pagination with OGC-style links, forged cursors,
bad query parameters; grids with filters, simplification, ancestors and KPIs; reference data."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from workflow_helpers import T0, drive, people

from server.clock import CLOCK_KEY


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def ids(page):
    return [feature["id"] for feature in page["features"]]


def next_link(page):
    found = [link["href"] for link in page["links"] if link["rel"] == "next"]
    return found[0] if found else None


def test_pages_walk_every_incident_once_in_a_stable_order(client, tokens):
    headers = bearer(tokens["leader1"])
    everything = client.get("/api/v1/incidents", headers=headers).get_json()
    assert everything["numberReturned"] == 8 and next_link(everything) is None
    seen = []
    url = "/api/v1/incidents?limit=3&category=sanitation"
    while url:
        page = client.get(url, headers=headers).get_json()
        assert page["numberReturned"] <= 3
        seen += ids(page)
        url = next_link(page)
        if url:
            assert parse_qs(urlsplit(url).query)["category"] == ["sanitation"]  # filters carry over
    assert seen == ids(everything)
    reported = [f["properties"]["reported_at"] for f in everything["features"]]
    assert reported == sorted(reported, reverse=True)


def test_forged_and_foreign_cursors_are_400(client, tokens):
    headers = bearer(tokens["leader1"])
    first = client.get("/api/v1/incidents?limit=2", headers=headers).get_json()
    cursor = parse_qs(urlsplit(next_link(first)).query)["cursor"][0]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    grids_page = client.get("/api/v1/grids?limit=1", headers=headers).get_json()
    grid_cursor = parse_qs(urlsplit(next_link(grids_page)).query)["cursor"][0]
    for bad in (tampered, "garbage", "W1siMjAyNiJdXQ", grid_cursor, "' OR 1=1 --"):
        response = client.get("/api/v1/incidents", query_string={"cursor": bad}, headers=headers)
        assert response.status_code == 400
        assert response.get_json()["error"]["field"] == "cursor"


def test_filters_by_bbox_grid_category_status_time_and_overdue(client, tokens, conn, app):
    headers = bearer(tokens["operator1"])

    def query(**params):
        response = client.get("/api/v1/incidents", query_string=params, headers=headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    township_one = query(bbox="103.30,29.85,103.35,29.95")
    grids = {f["properties"]["grid"] for f in township_one["features"]}
    assert grids == {"511423001001001", "511423001001002", "511423001002001", "511423001002002"}
    assert {f["properties"]["grid"] for f in query(grid="511423002")["features"]} == {
        "511423002001001",
        "511423002001002",
        "511423002002001",
        "511423002002002",
    }
    assert query(grid="511423001001002")["numberReturned"] == 1
    assert query(category="dispute")["numberReturned"] == 0
    assert query(category="dispute,sanitation")["numberReturned"] == 8
    assert query(status="accepted")["numberReturned"] == 0
    # the fixture reports hourly from 2026-06-01 09:00+08
    assert (
        query(reported_after="2026-06-01T11:00:00+08:00", reported_before="2026-06-01T13:00:00+08:00")[
            "numberReturned"
        ]
        == 2
    )

    users = people(conn)
    first = conn.execute("SELECT id FROM incidents ORDER BY id LIMIT 1").fetchone()["id"]
    conn.execute("UPDATE incidents SET category_code = 'safety_hazard' WHERE id = %s", [first])
    last = drive(conn, users, first, "dispatched")
    conn.commit()
    app.extensions[CLOCK_KEY] = lambda: last + timedelta(days=3)  # past safety_hazard's 2 days
    overdue = query(overdue="true")
    assert ids(overdue) == [first]
    assert overdue["features"][0]["properties"]["warning"] == "red"
    assert query(overdue="false")["numberReturned"] == 7
    app.extensions[CLOCK_KEY] = lambda: T0
    assert query(overdue="true")["numberReturned"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "nan,0,1,1"}, "bbox"),
        ({"bbox": "0,0,200,1"}, "bbox"),
        ({"bbox": "5,5,1,1"}, "bbox"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"status": "open"}, "status"),
        ({"category": "x'; DROP TABLE incidents;--"}, "category"),
        ({"category": "nosuchcategory"}, "category"),
        ({"grid": "1' OR '1'='1"}, "grid"),
        ({"grid": "999999"}, "grid"),
        ({"grid": "511423001,511423002"}, "grid"),
        ({"reported_after": "yesterday"}, "reported_after"),
        ({"reported_before": "2026-06-01T10:00:00"}, "reported_before"),
        ({"overdue": "maybe"}, "overdue"),
    ],
)
def test_bad_query_parameters_name_the_field(client, tokens, conn, params, field):
    response = client.get("/api/v1/incidents", query_string=params, headers=bearer(tokens["operator1"]))
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["field"] == field
    assert conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 8


def test_grids_list_filters_and_simplifies(client, tokens):
    headers = bearer(tokens["inspector1"])
    grids = client.get("/api/v1/grids?level=grid", headers=headers).get_json()
    assert grids["numberReturned"] == 8
    first = grids["features"][0]
    assert first["id"] == "511423001001001" and first["geometry"]["type"] == "MultiPolygon"
    assert first["properties"]["parent"] == "511423001001" and first["properties"]["member_name"] == "张网格"
    for_department = client.get("/api/v1/grids?level=grid", headers=bearer(tokens["handler1"])).get_json()
    assert for_department["features"][0]["properties"]["member_name"] is None  # as on the map tiles
    children = client.get("/api/v1/grids?parent=511423001", headers=headers).get_json()
    assert [f["id"] for f in children["features"]] == ["511423001001", "511423001002"]
    in_box = client.get(
        "/api/v1/grids?level=grid&bbox=103.301,29.851,103.302,29.852", headers=headers
    ).get_json()
    assert [f["id"] for f in in_box["features"]] == ["511423001001001"]
    simplified = client.get("/api/v1/grids?level=county&simplify=0.01", headers=headers).get_json()
    assert simplified["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    paged, url = [], "/api/v1/grids?limit=4"
    while url:
        page = client.get(url, headers=headers).get_json()
        paged += [f["id"] for f in page["features"]]
        url = next_link(page)
    assert len(paged) == 15 and paged == sorted(paged)
    for params, field in (
        ({"level": "planet"}, "level"),
        ({"parent": "<script>"}, "parent"),
        ({"simplify": "-1"}, "simplify"),
        ({"simplify": "inf"}, "simplify"),
        ({"bbox": "x"}, "bbox"),
    ):
        response = client.get("/api/v1/grids", query_string=params, headers=headers)
        assert response.status_code == 400 and response.get_json()["error"]["field"] == field


def test_one_grid_has_ancestors_and_kpis(client, tokens, app):
    app.extensions[CLOCK_KEY] = lambda: T0
    response = client.get("/api/v1/grids/511423001", headers=bearer(tokens["leader1"]))
    assert response.status_code == 200
    township = response.get_json()["properties"]
    assert [a["code"] for a in township["ancestors"]] == ["511423"]
    assert township["kpis"]["incidents"] == 4 and township["kpis"]["open"] == 4
    assert township["kpis"]["reported_last_30_days"] == 4 and township["kpis"]["on_time_rate"] is None
    grid = client.get("/api/v1/grids/511423001001001", headers=bearer(tokens["leader1"])).get_json()
    assert [a["level"] for a in grid["properties"]["ancestors"]] == ["county", "township", "village"]
    assert client.get("/api/v1/grids/nope", headers=bearer(tokens["leader1"])).status_code == 404
    assert client.get("/api/v1/grids/bad%20code", headers=bearer(tokens["leader1"])).status_code == 400
    assert client.get("/api/v1/grids/511423").status_code == 401


def test_a_grid_that_closes_nothing_has_an_on_time_rate_of_zero(client, tokens, app, conn):
    """按期结案率 = closed on time ÷ due: an open case past its due time counts, unclosed."""
    app.extensions[CLOCK_KEY] = lambda: T0
    conn.execute(
        "UPDATE incidents SET due_at = %s WHERE id = (SELECT min(id) FROM incidents)",
        [T0 - timedelta(days=1)],
    )
    conn.commit()
    kpis = client.get("/api/v1/grids/511423001", headers=bearer(tokens["leader1"])).get_json()
    assert kpis["properties"]["kpis"]["due"] == 1
    assert kpis["properties"]["kpis"]["on_time_rate"] == 0.0


def test_categories_departments_and_me(client, tokens):
    headers = bearer(tokens["handler1"])
    categories = client.get("/api/v1/categories", headers=headers).get_json()["categories"]
    straw = next(c for c in categories if c["code"] == "straw_burning")
    assert straw["name_zh"] == "秸秆焚烧" and straw["time_limit_s"] == 4 * 3600
    assert straw["default_department"] == "agriculture"
    departments = client.get("/api/v1/departments", headers=headers).get_json()["departments"]
    assert len(departments) == 10
    me = client.get("/api/v1/users/me", headers=headers).get_json()
    assert me["role"] == "department" and me["department"] == "emergency"


def test_paging_is_stable_when_many_incidents_share_a_time(client, tokens, conn):
    conn.execute("UPDATE incidents SET reported_at = timestamptz '2026-06-01 12:00+08'")
    conn.commit()
    headers = bearer(tokens["operator1"])
    seen, url = [], "/api/v1/incidents?limit=3"
    while url:
        page = client.get(url, headers=headers).get_json()
        seen += ids(page)
        url = next_link(page)
    assert len(seen) == 8 and seen == sorted(seen, reverse=True)
