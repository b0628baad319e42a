"""挂账 over HTTP: the operator files a case on the register and resumes it; the status in the
REST filters, the tile filters and Open311 (still open, the reason as status notes)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tiles_support import NEAR, tile_path
from workflow_helpers import T0, drive, file, people

from server.clock import CLOCK_KEY

NOW = T0 + timedelta(days=5)  # the 48-hour limit of the case below has passed


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def in_progress_case(conn) -> int:
    users = people(conn)
    incident = file(conn, users["inspector1"])
    drive(conn, users, incident["id"], "in_progress")
    conn.commit()
    return incident["id"]


def test_register_and_resume_over_http(app, client, conn, tokens):
    app.extensions[CLOCK_KEY] = lambda: NOW
    incident_id = in_progress_case(conn)
    operator = bearer(tokens["operator1"])
    path = f"/api/v1/incidents/{incident_id}/actions"

    no_reason = client.post(f"{path}/register", json={}, headers=operator)
    assert no_reason.status_code == 400 and no_reason.get_json()["error"]["field"] == "note"
    for username in ("leader1", "handler1", "admin1", "inspector1"):
        assert (
            client.post(f"{path}/register", json={"note": "x"}, headers=bearer(tokens[username])).status_code
            == 403
        )
    overdue = client.get("/api/v1/incidents?overdue=true", headers=operator).get_json()
    assert incident_id in [f["id"] for f in overdue["features"]]

    registered = client.post(
        f"{path}/register", json={"note": "涉及土地权属，待县政府协调"}, headers=operator
    )
    assert registered.status_code == 200
    properties = registered.get_json()["properties"]
    assert properties["status"] == "registered" and properties["due_at"] is None
    assert properties["allowed_actions"] == ["resume", "comment"]

    def listed(query: str) -> list[int]:
        return [
            f["id"] for f in client.get(f"/api/v1/incidents?{query}", headers=operator).get_json()["features"]
        ]

    assert listed("status=registered") == [incident_id]
    assert incident_id not in listed("overdue=true")
    again = client.post(f"{path}/register", json={"note": "x"}, headers=operator)
    assert again.status_code == 409 and again.get_json()["error"]["allowed_actions"] == ["resume", "comment"]

    bad_due = client.post(f"{path}/resume", json={"due_at": "soon"}, headers=operator)
    assert bad_due.status_code == 400 and bad_due.get_json()["error"]["field"] == "due_at"
    for far in ("9999-12-31T23:59:59-14:00", (NOW + timedelta(days=367)).isoformat()):
        too_far = client.post(f"{path}/resume", json={"due_at": far}, headers=operator)
        assert too_far.status_code == 422 and too_far.get_json()["error"]["field"] == "due_at"
        extended = client.post(f"{path}/extend", json={"due_at": far, "note": "x"}, headers=operator)
        assert extended.status_code == 409  # not while on the register
    resumed = client.post(f"{path}/resume", headers=operator)
    assert resumed.status_code == 200
    properties = resumed.get_json()["properties"]
    assert properties["status"] == "in_progress"
    assert datetime.fromisoformat(properties["due_at"]) == NOW + timedelta(days=2)


def test_open311_shows_a_registered_case_as_open_with_its_reason(app, client, conn, tokens):
    app.extensions[CLOCK_KEY] = lambda: NOW
    incident_id = in_progress_case(conn)
    operator = bearer(tokens["operator1"])
    client.post(
        f"/api/v1/incidents/{incident_id}/actions/register", json={"note": "待专项资金"}, headers=operator
    )
    [request] = client.get(
        f"/open311/v2/requests/{incident_id}.json", query_string={"api_key": tokens["operator1"]}
    ).get_json()
    assert request["status"] == "open" and request["status_notes"] == "待专项资金"
    assert request["expected_datetime"] is None  # no clock runs
    as_xml = client.get(
        f"/open311/v2/requests/{incident_id}.xml", query_string={"api_key": tokens["operator1"]}
    )
    assert as_xml.status_code == 200 and b"<status>open</status>" in as_xml.data
    assert "<status_notes>待专项资金</status_notes>".encode() in as_xml.data
    open_ids = [
        r["service_request_id"]
        for r in client.get(
            "/open311/v2/requests.json", query_string={"api_key": tokens["operator1"], "status": "open"}
        ).get_json()
    ]
    assert str(incident_id) in open_ids


def test_tiles_accept_the_registered_status(client, tokens):
    response = client.get(
        tile_path("incidents", NEAR, 8) + "?status=registered", headers=bearer(tokens["operator1"])
    )
    assert response.status_code == 204  # a valid filter that nothing matches yet
