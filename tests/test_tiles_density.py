"""The heatmap layer draws H3 hexagons: checked against Uber's h3 library itself, from the
incidents' coordinates, and the cached tiles a new incident drops include the neighbouring tile
its hexagon crosses into."""

from __future__ import annotations

import math
from collections import Counter

import psycopg
import pytest
from h3.api import basic_int as h3
from tiles_support import (
    NEAR,
    bearer,
    decode,
    file_incident,
    last_event_id,
    tile_of,
    token_for,
    wait_for_event,
)

from layers.catalog import DENSITY_DETAIL_FINEST, DENSITY_FINEST, DENSITY_RESOLUTIONS
from server.tiles.geo import density_tiles, hexagon_tiles, tile_fraction

EXTENT = 4096


def incidents(database_url: str, where: str = "true") -> list[tuple[float, float, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            f"SELECT ST_X(geom), ST_Y(geom), category_code FROM incidents WHERE {where}"  # noqa: S608 (test SQL)
        ).fetchall()


def density(client, headers, z: int, x: int, y: int, query: str = "") -> list[dict]:
    response = client.get(f"/tiles/incident_density/{z}/{x}/{y}.mvt{query}", headers=headers)
    assert response.status_code in (200, 204)
    return decode(response.data).get("incident_density", {}).get("features", [])


def expected_hexagons(rows, res: int, z: int, x: int, y: int) -> dict[int, Counter]:
    """Per H3 cell crossing the tile, its incidents by category, from the library: an incident
    counts in the ancestors of its resolution-10 cell."""
    cells: dict[int, Counter] = {}
    for lon, lat, category in rows:
        cell = h3.cell_to_parent(h3.latlng_to_cell(lat, lon, 10), res)
        if (x, y) in hexagon_tiles(cell, z):
            cells.setdefault(cell, Counter())[category] += 1
    return cells


def test_sql_and_python_agree_on_the_resolution_of_every_zoom(database_url):
    with psycopg.connect(database_url) as conn:
        in_sql = dict(
            conn.execute("SELECT z, tiles.density_resolution(z) FROM generate_series(5, 18) AS z").fetchall()
        )
        finest, detail = conn.execute("SELECT tiles.h3_finest(), tiles.h3_detail_finest()").fetchone()
    assert in_sql == DENSITY_RESOLUTIONS
    assert (finest, detail) == (DENSITY_FINEST, DENSITY_DETAIL_FINEST)


@pytest.mark.parametrize("z", [5, 8, 10, 12, 13, 15, 17])
def test_hexagons_are_the_h3_cells_of_the_incidents(client, database_url, z):
    headers = bearer(token_for(database_url, "operator1"))
    _, x, y = tile_of(NEAR, z)
    res = DENSITY_RESOLUTIONS[z]
    features = density(client, headers, z, x, y)
    expected = expected_hexagons(incidents(database_url), res, z, x, y)
    assert expected, "the fixture county has incidents near NEAR"
    assert {f["id"] for f in features} == set(expected)
    for feature in features:
        cell, properties = feature["id"], feature["properties"]
        assert h3.get_resolution(cell) == res
        assert properties["h3"] == h3.int_to_str(cell)
        assert properties["count"] == sum(expected[cell].values())
        assert {k: v for k, v in properties.items() if k not in ("h3", "count")} == dict(expected[cell])


def test_a_hexagon_inside_the_tile_has_the_outline_of_its_h3_cell(client, database_url):
    headers = bearer(token_for(database_url, "operator1"))
    z, x, y = tile_of(NEAR, 12)
    inside = [f for f in density(client, headers, z, x, y) if hexagon_tiles(f["id"], z) == {(x, y)}]
    assert inside
    for feature in inside:
        drawn = feature["geometry"]["coordinates"][0]
        # mapbox-vector-tile decodes with y up (0 at the bottom of the tile).
        corners = []
        for lat, lon in h3.cell_to_boundary(feature["id"]):
            fx, fy = tile_fraction(lon, lat, z)
            corners.append(((fx - x) * EXTENT, (1 - (fy - y)) * EXTENT))
        assert len(drawn) == len(corners) + 1 and drawn[0] == drawn[-1]
        for corner in corners:
            assert min(math.dist(corner, point) for point in drawn) <= 1.0


def test_status_and_period_filters_draw_coarser_hexagons_of_the_matching_incidents(client, database_url):
    headers = bearer(token_for(database_url, "operator1"))
    z, x, y = tile_of(NEAR, 13)
    res = min(DENSITY_RESOLUTIONS[z], DENSITY_DETAIL_FINEST)
    assert res < DENSITY_RESOLUTIONS[z]
    features = density(client, headers, z, x, y, "?status=reported")
    expected = expected_hexagons(incidents(database_url, "status = 'reported'"), res, z, x, y)
    assert expected
    assert {f["id"]: f["properties"]["count"] for f in features} == {
        cell: sum(c.values()) for cell, c in expected.items()
    }
    with psycopg.connect(database_url) as conn:
        month = conn.execute(
            "SELECT to_char(min(reported_at) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') FROM incidents"
        ).fetchone()[0]
    in_month = incidents(
        database_url, f"to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') = '{month}'"
    )
    features = density(client, headers, z, x, y, f"?period={month}")
    expected = expected_hexagons(in_month, res, z, x, y)
    assert {f["id"]: f["properties"]["count"] for f in features} == {
        cell: sum(c.values()) for cell, c in expected.items()
    }


def test_category_filter_keeps_the_fine_hexagons(client, database_url):
    headers = bearer(token_for(database_url, "operator1"))
    z, x, y = tile_of(NEAR, 15)
    features = density(client, headers, z, x, y, "?category=sanitation")
    expected = expected_hexagons(incidents(database_url, "category_code = 'sanitation'"), 10, z, x, y)
    assert expected
    assert {f["id"]: f["properties"]["count"] for f in features} == {
        cell: c["sanitation"] for cell, c in expected.items()
    }


def hexagon_count(tile: bytes, cell: int) -> int:
    features = decode(tile).get("incident_density", {}).get("features", [])
    return sum(f["properties"]["count"] for f in features if f["id"] == cell)


def a_point_whose_hexagon_crosses_a_tile_edge(z: int) -> tuple[tuple[float, float], set[tuple[int, int]]]:
    """A point east of NEAR whose heatmap hexagon at zoom z lies in two tiles or more."""
    for step in range(2000):
        point = (NEAR[0] + step * 0.0002, NEAR[1])
        touched = density_tiles(point[0], point[1], z, filtered=False)
        if len(touched) > 1:
            return point, set(touched)
    raise AssertionError("no hexagon crosses a tile edge east of NEAR")


def test_a_new_incident_drops_every_tile_its_hexagon_crosses_and_no_other(app, database_url):
    headers = bearer(token_for(database_url, "operator1"))
    z = 12
    point, touched = a_point_whose_hexagon_crosses_a_tile_edge(z)
    _, own_x, own_y = tile_of(point, z)
    assert (own_x, own_y) in touched
    nearby = [(x, y) for x in range(own_x - 2, own_x + 3) for y in range(own_y - 2, own_y + 3)]
    untouched = next(tile for tile in nearby if tile not in touched)
    cell = h3.cell_to_parent(h3.latlng_to_cell(point[1], point[0], 10), DENSITY_RESOLUTIONS[z])
    client = app.test_client()

    def get(x: int, y: int):
        return client.get(f"/tiles/incident_density/{z}/{x}/{y}.mvt", headers=headers)

    before = {tile: get(*tile) for tile in [*touched, untouched]}
    assert get(*untouched).headers["X-Tile-Cache"] == "hit"

    file_incident(database_url, point, category="sanitation")
    wait_for_event(app, last_event_id(database_url))

    for tile in touched:
        response = get(*tile)
        assert response.headers["X-Tile-Cache"] == "miss", tile
        assert response.headers["ETag"] != before[tile].headers["ETag"], tile
        assert hexagon_count(response.data, cell) == hexagon_count(before[tile].data, cell) + 1, tile
    response = get(*untouched)
    assert response.headers["X-Tile-Cache"] == "hit"
    assert response.headers["ETag"] == before[untouched].headers["ETag"]
