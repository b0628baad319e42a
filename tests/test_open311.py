"""Open311 GeoReport v2: a 12345 hotline files requests and reads their status back, in JSON and
XML; discovery, services, definitions, filters, tokens and errors in the spec's format."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

import pytest
from workflow_helpers import OWN_POINT, T0, people

from server.clock import CLOCK_KEY
from server.incidents import service
from server.incidents.service import ActionInput


@pytest.fixture
def hotline(app, tokens):
    app.extensions[CLOCK_KEY] = lambda: T0
    return tokens["operator1"]


def form(api_key, **more):
    return {
        "api_key": api_key,
        "service_code": "public_facility",
        "lat": str(OWN_POINT[1]),
        "long": str(OWN_POINT[0]),
        "description": "路灯不亮",
        "first_name": "王",
        "last_name": "女士",
        "phone": "13912345678",
        "attribute[priority]": "high",
        **more,
    }


def xml_requests(response) -> list[dict]:
    root = ElementTree.fromstring(response.data)
    assert root.tag == "service_requests"
    return [{child.tag: child.text or "" for child in request} for request in root]


def test_a_hotline_round_trip_in_json_and_xml(client, conn, hotline, app):
    created = client.post("/open311/v2/requests.json", data=form(hotline))
    assert created.status_code == 201 and created.mimetype == "application/json"
    [receipt] = created.get_json()
    request_id = receipt["service_request_id"]

    created_xml = client.post("/open311/v2/requests.xml", data=form(hotline, description="井盖缺失"))
    assert created_xml.status_code == 201 and created_xml.mimetype == "text/xml"
    [receipt_xml] = xml_requests(created_xml)
    assert receipt_xml["service_request_id"] != request_id

    [read] = client.get(
        f"/open311/v2/requests/{request_id}.json", query_string={"api_key": hotline}
    ).get_json()
    assert read["status"] == "open" and read["service_code"] == "public_facility"
    assert read["service_name"] == "公共设施" and read["description"] == "路灯不亮"
    assert read["lat"] == OWN_POINT[1] and read["long"] == OWN_POINT[0]
    assert read["address_id"] == "511423001001001" and read["expected_datetime"] is None
    incident = conn.execute(
        "SELECT channel, priority, reporter_name, reporter_phone FROM incidents WHERE id = %s",
        [int(request_id)],
    ).fetchone()
    assert incident == {
        "channel": "open311",
        "priority": "high",
        "reporter_name": "王 女士",
        "reporter_phone": "13912345678",
    }

    # The center works the case; the hotline reads the status back.
    users = people(conn)
    now = T0
    for action, username, note in (
        ("accept", "operator1", None),
        ("dispatch", "operator1", None),
        ("start", "handler1", None),
        ("resolve", "handler1", "已更换灯泡"),
        ("verify", "operator1", None),
    ):
        now += timedelta(hours=1)
        department = "housing" if action == "dispatch" else None
        if action in ("start", "resolve"):
            username = "housing_handler"
            if "housing_handler" not in users:
                conn.execute(
                    """INSERT INTO users (username, display_name, role, department_id)
                       SELECT 'housing_handler', '住建处置', 'department', id
                         FROM departments WHERE code = 'housing'"""
                )
                users = people(conn)
        service.perform(
            conn,
            user=users[username],
            incident_id=int(request_id),
            action=action,
            now=now,
            given=ActionInput(note=note, department=department),
        )
    conn.commit()
    [in_progress] = xml_requests(
        client.get(f"/open311/v2/requests/{request_id}.xml", query_string={"api_key": hotline})
    )
    assert in_progress["status"] == "open"
    assert in_progress["agency_responsible"] == "住房和城乡建设局"
    assert in_progress["status_notes"].startswith("核查通过")
    # Dispatched Tuesday 19:00 county time + 3 working days (public facilities): Friday 17:30.
    assert in_progress["expected_datetime"].startswith("2026-06-05T09:30:00+00:00")
    service.perform(
        conn,
        user=users["operator1"],
        incident_id=int(request_id),
        action="close",
        now=now,
        given=ActionInput(),
    )
    conn.commit()
    [closed] = client.get(
        f"/open311/v2/requests/{request_id}.json", query_string={"api_key": hotline}
    ).get_json()
    assert closed["status"] == "closed"

    # the token from the receipt leads back to the request
    token = receipt["token"]
    [found] = client.get(f"/open311/v2/tokens/{token}.json", query_string={"api_key": hotline}).get_json()
    assert found["service_request_id"] == request_id
    assert client.get("/open311/v2/tokens/forged.json", query_string={"api_key": hotline}).status_code == 404


def test_request_lists_follow_the_spec_filters(client, hotline, app):
    ids = [
        client.post("/open311/v2/requests.json", data=form(hotline)).get_json()[0]["service_request_id"]
        for _ in range(2)
    ]
    everything = client.get("/open311/v2/requests.json", query_string={"api_key": hotline}).get_json()
    assert {r["service_request_id"] for r in everything} >= set(ids)
    assert len(everything) == 10  # the 8 fixture incidents (reported 2026-06-01) are within 90 days
    only = client.get(
        "/open311/v2/requests.json", query_string={"api_key": hotline, "service_code": "public_facility"}
    ).get_json()
    assert sorted(r["service_request_id"] for r in only) == sorted(ids)
    assert (
        client.get(
            "/open311/v2/requests.json", query_string={"api_key": hotline, "status": "closed"}
        ).get_json()
        == []
    )
    by_id = client.get(
        "/open311/v2/requests.xml",
        query_string={"api_key": hotline, "service_request_id": f"{ids[0]},999999"},
    )
    assert [r["service_request_id"] for r in xml_requests(by_id)] == [ids[0]]
    window = client.get(
        "/open311/v2/requests.json",
        query_string={
            "api_key": hotline,
            "start_date": "2026-06-01T10:30:00+08:00",
            "end_date": "2026-06-01T12:30:00+08:00",
        },
    ).get_json()
    assert len(window) == 2
    app.extensions[CLOCK_KEY] = lambda: T0 + timedelta(days=120)  # the default window moves on
    assert client.get("/open311/v2/requests.json", query_string={"api_key": hotline}).get_json() == []


def test_discovery_services_and_definitions(client):
    discovery = client.get("/open311/v2/discovery.json").get_json()
    assert discovery["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert discovery["endpoints"][0]["url"].endswith("/open311/v2")
    xml = ElementTree.fromstring(client.get("/open311/v2/discovery.xml").data)
    assert [f.text for f in xml.find("endpoints/endpoint/formats")] == ["text/xml", "application/json"]
    services = client.get("/open311/v2/services.json").get_json()
    assert {s["service_code"] for s in services} >= {"straw_burning", "sanitation", "flood_geohazard"}
    services_xml = ElementTree.fromstring(client.get("/open311/v2/services.xml").data)
    assert services_xml.tag == "services" and services_xml[0].tag == "service"
    definition = ElementTree.fromstring(client.get("/open311/v2/services/sanitation.xml").data)
    assert definition.findtext("service_code") == "sanitation"
    priority = definition.find("attributes/attribute")
    assert priority.findtext("code") == "priority" and priority.findtext("datatype") == "singlevaluelist"
    assert [v.findtext("key") for v in priority.find("values")] == ["low", "normal", "high", "urgent"]
    assert client.get("/open311/v2/services/ufo.json").status_code == 404


def test_errors_come_in_the_spec_format(client, hotline, conn):
    missing_key = client.post("/open311/v2/requests.json", data=form(""))
    assert missing_key.status_code == 403 and missing_key.get_json()[0]["code"] == 403
    bad_key = client.post("/open311/v2/requests.xml", data=form("gw_wrong"))
    assert bad_key.status_code == 403
    error = ElementTree.fromstring(bad_key.data)
    assert error.tag == "errors" and error.findtext("error/code") == "403"
    for changes, words in (
        ({"lat": ""}, "lat"),
        ({"long": "east"}, "long"),
        ({"service_code": "ufo"}, "category"),
        ({"lat": "10", "long": "10"}, "lon/lat"),
        ({"attribute[priority]": "asap"}, "priority"),
    ):
        response = client.post("/open311/v2/requests.json", data=form(hotline, **changes))
        assert response.status_code == 400, (changes, response.data)
        assert words in response.get_json()[0]["description"]
    assert (
        client.get("/open311/v2/requests/999999.json", query_string={"api_key": hotline}).status_code == 404
    )
    bad_date = client.get("/open311/v2/requests.xml", query_string={"api_key": hotline, "start_date": "soon"})
    assert bad_date.status_code == 400 and ElementTree.fromstring(bad_date.data).tag == "errors"
    # Year 1 and 9999 parse as dates, and overflowed in the search window (a 500 before).
    for end_date in ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"):
        far = client.get("/open311/v2/requests.json", query_string={"api_key": hotline, "end_date": end_date})
        assert far.status_code == 400 and "end_date" in far.get_json()[0]["description"], far.data
    assert conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 8
