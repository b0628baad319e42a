"""What livemap.js fetches while Dash renders the map page: the map's config, for signed-in
users only, with its place-name points (dashboard/mapconfig.py)."""

from __future__ import annotations

import pytest

from server.auth.users import set_password

PASSWORD = "correct horse battery"


@pytest.fixture
def operator_client(client, conn):
    user_id = conn.execute("SELECT id FROM users WHERE username = 'operator1'").fetchone()["id"]
    set_password(conn, user_id=user_id, password=PASSWORD)
    conn.commit()
    response = client.post("/api/v1/auth/login", json={"username": "operator1", "password": PASSWORD})
    assert response.status_code == 200
    return client


def test_the_config_is_for_signed_in_users_only(client):
    response = client.get("/dashboard/map/config")
    assert response.status_code == 200
    assert response.get_json() is None  # the page shows its login link instead of a map


def test_the_config_follows_the_language_and_opens_a_linked_incident(operator_client, conn):
    incident = conn.execute("SELECT id, ST_X(geom) AS lon FROM incidents ORDER BY id LIMIT 1").fetchone()
    config = operator_client.get(f"/dashboard/map/config?lang=en&incident={incident['id']}").get_json()
    assert config["statusLabels"]["reported"] == "Reported"
    assert config["focus"]["id"] == incident["id"]
    assert config["focus"]["lon"] == pytest.approx(incident["lon"])
    assert config["defaultSwitches"] == ["grids", "incidents", "labels"]
    west_south, east_north = config["bounds"]
    assert west_south[0] < incident["lon"] < east_north[0]
    assert operator_client.get("/dashboard/map/config?incident=99999999").get_json()["focus"] is None
    assert operator_client.get("/dashboard/map/config?incident=1;drop").get_json()["focus"] is None
    assert operator_client.get("/dashboard/map/config").get_json()["statusLabels"]["reported"] == "待受理"


def test_place_names_are_one_point_inside_every_place_below_the_county(operator_client, conn):
    labels = operator_client.get("/dashboard/map/config").get_json()["style"]["sources"]["labels"]
    assert labels["type"] == "geojson"
    features = labels["data"]["features"]
    places = conn.execute("SELECT name_zh, level FROM grids WHERE level <> 'county'").fetchall()
    assert sorted((f["properties"]["name"], f["properties"]["level"]) for f in features) == sorted(
        (row["name_zh"], row["level"]) for row in places
    )
    for feature in features:
        lon, lat = feature["geometry"]["coordinates"]
        inside = conn.execute(
            "SELECT bool_or(ST_Intersects(geom, ST_SetSRID(ST_Point(%s, %s), 4326))) AS inside FROM grids"
            " WHERE name_zh = %s AND level = %s",
            [lon, lat, feature["properties"]["name"], feature["properties"]["level"]],
        ).fetchone()
        assert inside["inside"], feature
