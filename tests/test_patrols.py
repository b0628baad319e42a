"""Patrols recorded over the API (`POST /api/v1/patrols`): checked like filings, once per key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

MINE = "511423001001001"  # inspector1's grid: lon 103.300-103.325, lat 29.85-29.90
THEIRS = "511423001002001"  # inspector2's, just north of it
NOW = datetime.now(UTC)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def walk(*, minutes: int = 40, ended_ago: timedelta = timedelta(minutes=5), **changes) -> dict:
    ended = NOW - ended_ago
    body = {
        "started_at": (ended - timedelta(minutes=minutes)).isoformat(),
        "ended_at": ended.isoformat(),
        # About 1.4 km along the grid's middle.
        "track": {
            "type": "LineString",
            "coordinates": [[103.305, 29.87], [103.312, 29.875], [103.318, 29.88]],
        },
    }
    body.update(changes)
    return body


def patrol_count(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM patrols").fetchone()["n"]


def test_a_member_records_a_patrol_once_per_key(client, tokens, conn):
    headers = {**bearer(tokens["inspector1"]), "Idempotency-Key": "walk-1"}
    first = client.post("/api/v1/patrols", json=walk(), headers=headers)
    assert first.status_code == 201, first.get_json()
    patrol = first.get_json()
    assert patrol["properties"]["grid"] == MINE  # found from the track
    assert 1200 < patrol["properties"]["length_m"] < 1800
    again = client.post("/api/v1/patrols", json=walk(), headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == patrol["id"]
    assert patrol_count(conn) == 1
    changed = client.post("/api/v1/patrols", json=walk(minutes=30), headers=headers)
    assert changed.status_code == 422 and changed.get_json()["error"]["field"] == "Idempotency-Key"

    check_in = walk(grid=MINE, track={"type": "Point", "coordinates": [103.31, 29.86]}, minutes=10)
    assert (
        client.post("/api/v1/patrols", json=check_in, headers=bearer(tokens["inspector1"])).status_code == 201
    )

    listed = client.get(
        "/api/v1/patrols", query_string={"grid": "511423001"}, headers=bearer(tokens["leader1"])
    )
    assert listed.status_code == 200
    assert [f["properties"]["grid"] for f in listed.get_json()["features"]] == [MINE, MINE]
    own = client.get("/api/v1/patrols", headers=bearer(tokens["inspector2"])).get_json()
    assert own["features"] == []  # a member lists their own
    assert client.get("/api/v1/patrols", headers=bearer(tokens["handler1"])).status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        # Outside the grid: a walk a kilometre away in the next township.
        (
            walk(
                grid=MINE, track={"type": "LineString", "coordinates": [[103.36, 29.87], [103.365, 29.875]]}
            ),
            422,
            "track",
        ),
        (walk(ended_ago=timedelta(hours=1), minutes=-10), 422, "ended_at"),  # ends before it starts
        (
            walk(
                minutes=1, track={"type": "LineString", "coordinates": [[103.301, 29.851], [103.324, 29.899]]}
            ),
            422,
            "track",
        ),  # 5.7 km in a minute: about 340 km/h
        (walk(ended_ago=-timedelta(hours=2)), 422, "ended_at"),  # in the future
        (walk(grid=THEIRS, track={"type": "Point", "coordinates": [103.31, 29.92]}), 403, "grid"),
        (walk(grid="no-such-grid"), 404, "grid"),
        (walk(descripton="typo"), 422, "descripton"),  # unknown: refused, never dropped
        (
            walk(track={"type": "LineString", "coordinates": [[103.3, 29.87]]}),
            400,
            "track.LineString.coordinates",
        ),
        (walk(track={"type": "Polygon", "coordinates": []}), 400, "track"),
        (walk(started_at="yesterday"), 400, "started_at"),
        (walk(started_at="2026-06-01T08:00:00"), 400, "started_at"),  # no offset: ambiguous
        (walk(track={"type": "Point", "coordinates": [200, 29.87]}), 400, "track.Point.coordinates.0"),
    ],
)
def test_bad_patrols_are_refused_naming_the_field_and_write_nothing(
    client, tokens, conn, body, status, field
):
    response = client.post("/api/v1/patrols", json=body, headers=bearer(tokens["inspector1"]))
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["field"] == field
    assert patrol_count(conn) == 0


def test_a_900_kmh_track_is_refused(client, tokens, conn):
    # 15 km in one minute (900 km/h), all of it inside a grid stretched for the test.
    conn.execute(
        "UPDATE grids SET geom = ST_Multi(ST_MakeEnvelope(103.30, 29.85, %s, 29.90, 4326)) WHERE code = %s",
        [103.50, MINE],
    )
    conn.commit()
    track = {"type": "LineString", "coordinates": [[103.31, 29.87], [103.465, 29.87]]}
    response = client.post(
        "/api/v1/patrols",
        json=walk(grid=MINE, minutes=1, track=track),
        headers={**bearer(tokens["inspector1"]), "Accept-Language": "en"},
    )
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "track"
    assert response.get_json()["error"]["message"] == "the track is faster than 60 km/h"
    assert patrol_count(conn) == 0


def test_only_grid_members_record_patrols(client, tokens, conn):
    response = client.post("/api/v1/patrols", json=walk(), headers=bearer(tokens["operator1"]))
    assert response.status_code == 403
    assert patrol_count(conn) == 0
