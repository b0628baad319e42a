"""``observed_at`` on filing: when the inspector saw the problem, for reports queued offline and
sent later. ``reported_at`` stays the arrival time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from workflow_helpers import OWN_POINT

from server.clock import CLOCK_KEY

NOW = datetime(2026, 6, 3, 2, 0, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


@pytest.fixture
def fixed_clock(app):
    app.extensions[CLOCK_KEY] = lambda: NOW


def post(client, token, observed_at=None, key=None):
    body = {"lon": OWN_POINT[0], "lat": OWN_POINT[1], "category": "sanitation", "description": "离线上报"}
    if observed_at is not None:
        body["observed_at"] = observed_at
    headers = {"Authorization": f"Bearer {token}", **({"Idempotency-Key": key} if key else {})}
    return client.post("/api/v1/incidents", json=body, headers=headers)


def incident_count(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"]


def test_an_offline_report_keeps_when_it_was_seen_and_when_it_arrived(client, tokens, fixed_clock, conn):
    seen = (NOW - timedelta(hours=20)).astimezone(BEIJING)
    response = post(client, tokens["inspector1"], seen.isoformat())
    assert response.status_code == 201, response.get_json()
    properties = response.get_json()["properties"]
    assert datetime.fromisoformat(properties["observed_at"]) == seen
    assert datetime.fromisoformat(properties["reported_at"]) == NOW
    assert properties["events"][0]["data"] == {"observed_at": seen.isoformat()}
    stored = conn.execute(
        "SELECT observed_at, reported_at FROM incidents WHERE id = %s", [response.get_json()["id"]]
    )
    assert stored.fetchone() == {"observed_at": seen, "reported_at": NOW}


def test_a_report_without_observed_at_has_none(client, tokens, fixed_clock):
    properties = post(client, tokens["inspector1"]).get_json()["properties"]
    assert properties["observed_at"] is None and properties["events"][0]["data"] is None


@pytest.mark.parametrize(
    ("observed_at", "status"),
    [
        ((NOW + timedelta(minutes=5, seconds=1)).isoformat(), 422),  # beyond the clock skew allowed
        ((NOW - timedelta(days=7, seconds=1)).astimezone(BEIJING).isoformat(), 422),
        ("9999-12-31T23:59:59-14:00", 422),
        ("0001-01-01T00:00:00+14:00", 422),
        ("2026-06-03T09:00:00", 400),  # no offset: which clock?
        ("yesterday", 400),
        ("2026-06-03T09:00:00+08:00'; DROP TABLE incidents;--", 400),
    ],
)
def test_an_impossible_observed_time_is_refused_naming_the_field(
    client, tokens, fixed_clock, conn, observed_at, status
):
    response = post(client, tokens["inspector1"], observed_at)
    assert response.status_code == status
    assert response.get_json()["error"]["field"] == "observed_at"
    assert incident_count(conn) == 8


def test_a_phone_clock_a_little_fast_is_accepted(client, tokens, fixed_clock):
    response = post(client, tokens["inspector1"], (NOW + timedelta(minutes=4)).isoformat())
    assert response.status_code == 201


def test_the_idempotency_fingerprint_includes_the_observed_time(client, tokens, fixed_clock, conn):
    seen = (NOW - timedelta(hours=1)).isoformat()
    first = post(client, tokens["inspector1"], seen, key="outbox-1")
    again = post(client, tokens["inspector1"], seen, key="outbox-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    other = post(client, tokens["inspector1"], (NOW - timedelta(hours=2)).isoformat(), key="outbox-1")
    assert other.status_code == 422 and other.get_json()["error"]["field"] == "Idempotency-Key"
    assert incident_count(conn) == 9
