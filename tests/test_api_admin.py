"""Administration over HTTP: admins change category settings (time limits drive later due times)
and manage users; nobody else may."""

from __future__ import annotations

from datetime import timedelta

from workflow_helpers import OWN_POINT, T0

from server.clock import CLOCK_KEY


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_an_admin_changes_a_time_limit_and_later_dispatches_use_it(client, tokens, app):
    app.extensions[CLOCK_KEY] = lambda: T0
    admin = bearer(tokens["admin1"])
    changed = client.patch(
        "/api/v1/categories/sanitation",
        json={
            "time_limit_s": 5 * 3600,
            "time_limit_unit": "calendar",
            "default_department": "environment",
            "duplicate_radius_m": 250,
        },
        headers=admin,
    )
    assert changed.status_code == 200
    assert (
        changed.get_json()["time_limit_s"] == 5 * 3600
        and changed.get_json()["default_department"] == "environment"
    )
    operator = bearer(tokens["operator1"])
    filed = client.post(
        "/api/v1/incidents",
        json={"lon": OWN_POINT[0], "lat": OWN_POINT[1], "category": "sanitation"},
        headers=operator,
    ).get_json()
    client.post(f"/api/v1/incidents/{filed['id']}/actions/accept", headers=operator)
    dispatched = client.post(f"/api/v1/incidents/{filed['id']}/actions/dispatch", headers=operator).get_json()
    properties = dispatched["properties"]
    assert properties["department"] == "environment"
    assert properties["due_at"] == (T0 + timedelta(hours=5)).isoformat()


def test_category_changes_are_checked(client, tokens):
    admin = bearer(tokens["admin1"])
    for body, field, status in (
        ({"time_limit_s": 0}, "time_limit_s", 400),
        ({"time_limit_s": "1 day"}, "time_limit_s", 400),
        ({"default_department": "moon"}, "default_department", 422),
        ({"default_priority": "whenever"}, "default_priority", 400),
        ({"active": "perhaps"}, "active", 400),
        ({"name_zh": ""}, "name_zh", 400),
    ):
        response = client.patch("/api/v1/categories/dispute", json=body, headers=admin)
        assert response.status_code == status and response.get_json()["error"]["field"] == field
    assert client.patch("/api/v1/categories/nope", json={}, headers=admin).status_code == 404
    for username in ("operator1", "leader1", "inspector1", "handler1"):
        refused = client.patch(
            "/api/v1/categories/dispute", json={"active": False}, headers=bearer(tokens[username])
        )
        assert refused.status_code == 403
    dispute = next(
        c
        for c in client.get("/api/v1/categories", headers=admin).get_json()["categories"]
        if c["code"] == "dispute"
    )
    assert dispute["active"] and dispute["time_limit_s"] == 5 * 7 * 3600  # nothing refused was half-applied


def test_an_admin_manages_users(client, tokens):
    admin = bearer(tokens["admin1"])
    created = client.post(
        "/api/v1/users",
        json={"username": "sun", "role": "inspector", "grid": "511423002002002", "password": "pw-sun-123"},
        headers=admin,
    )
    assert created.status_code == 201
    token = created.get_json()["token"]
    assert client.get("/api/v1/users/me", headers=bearer(token)).get_json()["grids"] == ["511423002002002"]
    listed = {u["username"]: u for u in client.get("/api/v1/users", headers=admin).get_json()["users"]}
    assert listed["sun"]["has_password"] and listed["inspector1"]["grids"] == [
        "511423001001001",
        "511423001001002",
    ]
    assert (
        client.post("/api/v1/users", json={"username": "sun", "role": "leader"}, headers=admin).status_code
        == 409
    )
    assert (
        client.post("/api/v1/users", json={"username": "x", "role": "king"}, headers=admin).status_code == 400
    )
    off = client.patch("/api/v1/users/sun", json={"active": False}, headers=admin)
    assert off.status_code == 200 and off.get_json()["active"] is False
    assert client.get("/api/v1/users/me", headers=bearer(token)).status_code == 401
    assert client.patch("/api/v1/users/nobody", json={"active": True}, headers=admin).status_code == 404
    assert client.get("/api/v1/users", headers=bearer(tokens["operator1"])).status_code == 403
    assert (
        client.post(
            "/api/v1/users", json={"username": "y", "role": "admin"}, headers=bearer(tokens["leader1"])
        ).status_code
        == 403
    )
