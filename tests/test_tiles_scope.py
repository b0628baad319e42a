"""Tiles within each viewer's scope (server/auth/scope.py), as the REST API reads incidents: an
inspector's points only in their grids, a department handler's only its cases, counts for all;
and the cache keyed on what a tile shows, so an operator and a leader share one tile."""

from __future__ import annotations

import psycopg
import pytest
from tiles_support import (
    FAR,
    NEAR,
    bearer,
    decode,
    file_incident,
    last_event_id,
    tile_path,
    token_for,
    wait_for_event,
)

from server.auth.scope import ALL, DEPARTMENT, GRIDS, scope_of
from server.auth.users import User


def points(client, headers: dict, point: tuple[float, float], z: int = 16) -> set[int]:
    response = client.get(tile_path("incidents", point, z), headers=headers)
    assert response.status_code in (200, 204)
    layer = decode(response.data).get("incidents", {"features": []})
    return {feature["id"] for feature in layer["features"]}


def rest_ids(client, headers: dict) -> set[int]:
    response = client.get("/api/v1/incidents?limit=200", headers=headers)
    assert response.status_code == 200
    return {feature["id"] for feature in response.json["features"]}


@pytest.fixture
def incidents(database_url) -> dict[str, int]:
    """One new incident near inspector1's fixture incident, and two far away in another township:
    one dispatched to handler1's department, one to another department."""
    near = file_incident(database_url, NEAR)
    far_ours = file_incident(database_url, FAR)
    far_theirs = file_incident(database_url, (FAR[0] + 0.0002, FAR[1]))
    with psycopg.connect(database_url) as conn:
        conn.execute(
            """UPDATE incidents SET department_id = (SELECT id FROM departments WHERE code = %s)
                WHERE id = %s""",
            ["emergency", far_ours],
        )
        conn.execute(
            """UPDATE incidents SET department_id = (SELECT id FROM departments WHERE code <> 'emergency'
                                                     ORDER BY code LIMIT 1)
                WHERE id = %s""",
            [far_theirs],
        )
    return {"near": near, "far_ours": far_ours, "far_theirs": far_theirs}


def wait_until_settled(database_url: str, app) -> None:
    """Until this process's tile listener has applied every change so far: a tile built while a
    change arrives is served but not stored."""
    app.extensions["gridwatch.tiles"].listener.ensure_started()
    wait_for_event(app, last_event_id(database_url))


def test_an_inspectors_points_are_only_those_of_their_grids(client, database_url, incidents):
    inspector = bearer(token_for(database_url, "inspector1"))
    operator = bearer(token_for(database_url, "operator1"))
    assert incidents["near"] in points(client, inspector, NEAR)
    assert points(client, inspector, FAR) == set()
    assert {incidents["far_ours"], incidents["far_theirs"]} <= points(client, operator, FAR)
    # The same rule as the REST API: every point the inspector may read, and nothing else.
    assert points(client, inspector, NEAR) <= rest_ids(client, inspector)
    assert not {incidents["far_ours"], incidents["far_theirs"]} & rest_ids(client, inspector)


def test_an_inspector_still_sees_counts_elsewhere(client, database_url, incidents):
    inspector = bearer(token_for(database_url, "inspector1"))
    response = client.get(tile_path("incidents", FAR, 12), headers=inspector)
    cells = decode(response.data)["incidents"]["features"]
    assert sum(cell["properties"]["count"] for cell in cells) >= 3  # the far township's incidents


def test_a_department_handlers_points_are_only_its_cases(client, database_url, incidents):
    handler = bearer(token_for(database_url, "handler1"))
    assert points(client, handler, FAR) == {incidents["far_ours"]}
    assert points(client, handler, NEAR) == set()
    assert rest_ids(client, handler) == {incidents["far_ours"]}


def test_an_operator_and_a_leader_share_one_cached_tile(client, database_url, incidents):
    path = tile_path("grids,incidents", FAR, 16)
    operator = bearer(token_for(database_url, "operator1"))
    wait_until_settled(database_url, client.application)
    first = client.get(path, headers=operator)
    second = client.get(path, headers=bearer(token_for(database_url, "leader1")))
    assert first.headers["X-Tile-Cache"] == "miss"
    assert second.headers["X-Tile-Cache"] == "hit"
    assert first.headers["ETag"] == second.headers["ETag"]
    # An inspector's scope is another tile, and so is a department handler's (no member names).
    inspector = client.get(path, headers=bearer(token_for(database_url, "inspector1")))
    handler = client.get(path, headers=bearer(token_for(database_url, "handler1")))
    assert inspector.headers["X-Tile-Cache"] == handler.headers["X-Tile-Cache"] == "miss"
    assert len({first.headers["ETag"], inspector.headers["ETag"], handler.headers["ETag"]}) == 3


def test_an_inspector_given_another_grid_sees_its_points_at_once(client, database_url, incidents):
    inspector = bearer(token_for(database_url, "inspector1"))
    assert points(client, inspector, FAR) == set()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            """UPDATE grids SET member_id = (SELECT id FROM users WHERE username = 'inspector1')
                WHERE id = grid_at(ST_SetSRID(ST_MakePoint(%s, %s), 4326))""",
            FAR,
        )
    # The scope is the cache key: the new grid's points are a tile of another key.
    assert {incidents["far_ours"], incidents["far_theirs"]} <= points(client, inspector, FAR)


@pytest.mark.parametrize(
    ("role", "department_id", "kind"),
    [("operator", None, ALL), ("leader", None, ALL), ("admin", None, ALL), ("department", 3, DEPARTMENT)],
)
def test_the_scope_follows_the_role(role, department_id, kind):
    user = User(id=1, username="u", display_name="u", role=role, department_id=department_id)
    assert scope_of(user).kind == kind


def test_an_inspector_without_grids_and_a_handler_without_department_see_nothing():
    inspector = User(id=1, username="i", display_name="i", role="inspector", department_id=None)
    handler = User(id=2, username="h", display_name="h", role="department", department_id=None)
    for user in (inspector, handler):
        scope = scope_of(user)
        assert scope.kind == GRIDS and not scope.sees(grid_id=1, department_id=None)
        assert scope.sql_params()["scope_grids"] == []
