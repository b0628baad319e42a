"""The authorization matrix over HTTP: every role × every action × own/other grid or department.

The expectations are written out here by hand (not derived from the workflow table), so a
change to the table that changes who may do what fails this test.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from workflow_helpers import OTHER_POINT, OWN_POINT, PATH_TO, T0, file, people

from server.clock import CLOCK_KEY
from server.incidents import service
from server.incidents.service import ActionInput

# Who may take each action; "inspector" and "department" mean: in their own grid / department.
EXPECTED = {
    "accept": {"operator"},
    "reject": {"operator"},
    "link_duplicate": {"operator"},
    "dispatch": {"operator"},
    "start": {"department"},
    "resolve": {"department"},
    "verify": {"operator", "inspector"},
    "rework": {"operator", "inspector"},
    "close": {"operator"},
    "rate": {"operator"},
    "return": {"department"},
    "extend": {"operator"},
    "register": {"operator"},
    "resume": {"operator"},
    "escalate": {"operator", "inspector"},
    "self_handle": {"inspector"},
    "comment": {"operator", "inspector", "department"},
}
SOURCE_STATUS = {
    "accept": "reported",
    "reject": "reported",
    "link_duplicate": "reported",
    "dispatch": "accepted",
    "start": "dispatched",
    "resolve": "in_progress",
    "verify": "resolved",
    "rework": "resolved",
    "close": "verified",
    "rate": "closed",
    "return": "dispatched",
    "extend": "dispatched",
    "register": "in_progress",
    "resume": "registered",
    "escalate": "reported",
    "self_handle": "reported",
    "comment": "dispatched",
}
ACTORS = {
    "inspector": "inspector1",
    "operator": "operator1",
    "department": "handler1",
    "leader": "leader1",
    "admin": "admin1",
}
# A new due time must lie within a year of the (controlled) clock: server/incidents/effects.py.
NEW_DUE_AT = (T0 + timedelta(days=30)).isoformat()
BODY = {"note": "理由", "duplicate_of": 1, "due_at": NEW_DUE_AT, "rating": 4}


def make_case(conn, users, status: str, side: str) -> int:
    """An incident in ``status``: 'own' lies in inspector1's grid and goes to handler1's
    department (emergency); 'other' lies in inspector2's grid and goes to the water bureau."""
    point = OWN_POINT if side == "own" else OTHER_POINT
    incident = file(conn, users["operator1"], point=point)
    now = T0
    for action, username in PATH_TO[status]:
        now += timedelta(minutes=1)
        department = "water" if side == "other" and action == "dispatch" else None
        if side == "other" and username == "handler1":
            username = "water_handler"
        if side == "other" and username == "inspector1":
            username = "inspector2"
        given = ActionInput(note="n", department=department)
        service.perform(
            conn, user=users[username], incident_id=incident["id"], action=action, now=now, given=given
        )
    return incident["id"]


@pytest.fixture
def users(conn):
    conn.execute(
        """INSERT INTO users (username, display_name, role, department_id)
           SELECT 'water_handler', '水利处置', 'department', id FROM departments WHERE code = 'water'"""
    )
    return people(conn)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_every_role_and_action_on_own_and_other_grid_or_department(app, client, conn, users, tokens):
    app.extensions[CLOCK_KEY] = lambda: T0 + timedelta(hours=1)
    cases = {
        (action, role, side): make_case(conn, users, SOURCE_STATUS[action], side)
        for action in EXPECTED
        for role in ACTORS
        for side in ("own", "other")
    }
    conn.commit()
    outcomes = {}
    for (action, role, side), incident_id in cases.items():
        response = client.post(
            f"/api/v1/incidents/{incident_id}/actions/{action}",
            json=BODY,
            headers=bearer(tokens[ACTORS[role]]),
        )
        outcomes[(action, role, side)] = response.status_code
    expected = {}
    for action, roles in EXPECTED.items():
        for role in ACTORS:
            for side in ("own", "other"):
                if role in roles and (side == "own" or role == "operator"):
                    expected[(action, role, side)] = 200
                elif role == "inspector" and side == "other":
                    expected[(action, role, side)] = 404  # other grids' cases are invisible
                elif role == "department" and (
                    side == "other" or SOURCE_STATUS[action] in ("reported", "accepted")
                ):
                    expected[(action, role, side)] = 404  # not dispatched to this department
                else:
                    expected[(action, role, side)] = 403
    assert outcomes == expected


def test_a_grid_member_resolves_again_only_what_they_handled_themselves(client, conn, users, tokens, app):
    app.extensions[CLOCK_KEY] = lambda: T0 + timedelta(hours=1)
    self_handled = file(conn, users["inspector1"])
    service.perform(
        conn,
        user=users["inspector1"],
        incident_id=self_handled["id"],
        action="self_handle",
        now=T0,
        given=ActionInput(note="n"),
    )
    service.perform(
        conn,
        user=users["operator1"],
        incident_id=self_handled["id"],
        action="rework",
        now=T0,
        given=ActionInput(note="n"),
    )
    departmental = make_case(conn, users, "in_progress", "own")
    conn.commit()
    headers = bearer(tokens["inspector1"])
    assert (
        client.post(f"/api/v1/incidents/{self_handled['id']}/actions/resolve", headers=headers).status_code
        == 200
    )
    assert (
        client.post(f"/api/v1/incidents/{departmental}/actions/resolve", headers=headers).status_code == 403
    )


def test_filing_and_reading_by_role_and_grid(client, conn, users, tokens):
    body = {"category": "sanitation", "description": "垃圾"}
    expected_filing = {
        ("inspector", "own"): 201,
        ("inspector", "other"): 403,
        ("operator", "own"): 201,
        ("operator", "other"): 201,
        ("department", "own"): 403,
        ("department", "other"): 403,
        ("leader", "own"): 403,
        ("leader", "other"): 403,
        ("admin", "own"): 403,
        ("admin", "other"): 403,
    }
    filed = {}
    for (role, side), status in expected_filing.items():
        lon, lat = OWN_POINT if side == "own" else OTHER_POINT
        response = client.post(
            "/api/v1/incidents", json={**body, "lon": lon, "lat": lat}, headers=bearer(tokens[ACTORS[role]])
        )
        assert response.status_code == status, (role, side, response.get_json())
        if status == 201:
            filed[(role, side)] = response.get_json()["id"]
    conn.commit()

    def visible(username):
        page = client.get("/api/v1/incidents?limit=1000", headers=bearer(tokens[username])).get_json()
        return {feature["id"] for feature in page["features"]}

    everything = visible("operator1")
    assert visible("leader1") == everything == visible("admin1")
    inspector_sees = visible("inspector1")
    assert filed[("operator", "own")] in inspector_sees and filed[("operator", "other")] not in inspector_sees
    assert visible("handler1") == set()
    other = filed[("operator", "other")]
    assert client.get(f"/api/v1/incidents/{other}", headers=bearer(tokens["inspector1"])).status_code == 404
    assert client.get(f"/api/v1/incidents/{other}", headers=bearer(tokens["inspector2"])).status_code == 200


def test_reporter_contact_details_only_for_operators_and_admins(client, conn, tokens):
    response = client.post(
        "/api/v1/incidents",
        json={
            "lon": OWN_POINT[0],
            "lat": OWN_POINT[1],
            "category": "dispute",
            "channel": "hotline_12345",
            "reporter_name": "王女士",
            "reporter_phone": "13900000000",
        },
        headers=bearer(tokens["operator1"]),
    )
    incident_id = response.get_json()["id"]
    for username, sees in (("operator1", True), ("admin1", True), ("leader1", False), ("inspector1", False)):
        properties = client.get(
            f"/api/v1/incidents/{incident_id}", headers=bearer(tokens[username])
        ).get_json()["properties"]
        assert ("reporter_phone" in properties) is sees and ("reporter_name" in properties) is sees
        if sees:
            assert properties["reporter_phone"] == "13900000000" and properties["channel"] == "hotline_12345"
