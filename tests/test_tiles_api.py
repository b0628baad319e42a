"""The tile endpoints: catalog, TileJSON, tiles decoded with mapbox-vector-tile, filters, roles,
ETags, gzip and the 4xx answers."""

from __future__ import annotations

import gzip
import threading

import pytest
from tiles_support import NEAR, bearer, decode, tile_path, token_for

from layers.catalog import LAYERS


@pytest.fixture
def operator(database_url):
    return bearer(token_for(database_url, "operator1"))


def test_index_lists_the_layers_the_caller_may_read(client, operator):
    public = [layer["name"] for layer in client.get("/tiles/index.json").json]
    assert public == ["grids", "incident_density"]
    names = [layer["name"] for layer in client.get("/tiles/index.json", headers=operator).json]
    assert names == list(LAYERS)


def test_tilejson_describes_vector_layers_and_fields(client, operator):
    document = client.get("/tiles/grids,incidents.json", headers=operator).json
    assert document["tilejson"] == "3.0.0"
    assert document["tiles"] == ["http://localhost/tiles/grids,incidents/{z}/{x}/{y}.mvt"]
    grids, incidents = document["vector_layers"]
    assert grids["id"] == "grids" and grids["fields"]["member"] == "String"
    assert incidents["fields"]["count"] == "Number"
    public = client.get("/tiles/grids.json").json
    assert "member" not in public["vector_layers"][0]["fields"]


def test_zoomed_out_tile_counts_incidents_per_cell(client, operator):
    response = client.get(tile_path("incidents", NEAR, 8), headers=operator)
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.mapbox-vector-tile"
    features = decode(response.data)["incidents"]["features"]
    assert sum(f["properties"]["count"] for f in features) == 8
    assert all(f["geometry"]["type"] == "Point" for f in features)


def test_zoomed_in_tile_lists_incidents(client, operator):
    features = decode(client.get(tile_path("incidents", NEAR, 16), headers=operator).data)["incidents"][
        "features"
    ]
    assert [f["properties"]["category"] for f in features] == ["sanitation"]
    assert set(features[0]["properties"]) == {"category", "status", "priority", "age_h"}
    assert features[0]["id"] > 0


def test_grids_show_the_level_of_the_zoom_with_counts(client, operator):
    townships = decode(client.get(tile_path("grids", NEAR, 8), headers=operator).data)["grids"]["features"]
    assert {f["properties"]["level"] for f in townships} == {"township"}
    assert sorted(f["properties"]["open"] for f in townships) == [4, 4]
    grid = decode(client.get(tile_path("grids", NEAR, 14), headers=operator).data)["grids"]["features"][0]
    assert grid["properties"]["level"] == "grid"
    assert grid["properties"]["member"] == "张网格"
    assert grid["properties"]["has_member"] is True


def test_a_property_the_role_may_not_read_is_not_in_the_tile(client):
    grid = decode(client.get(tile_path("grids", NEAR, 14)).data)["grids"]["features"][0]
    assert "member" not in grid["properties"]
    assert grid["properties"]["has_member"] is True


def test_layers_a_role_may_not_read_are_refused(client, database_url):
    assert client.get(tile_path("incidents", NEAR, 10)).status_code == 401
    handler = bearer(token_for(database_url, "handler1"))
    response = client.get(tile_path("coverage", NEAR, 12), headers=handler)
    assert response.status_code == 403
    assert response.json["error"]["field"] == "layer"
    assert client.get(tile_path("response", NEAR, 12), headers=handler).status_code == 200


def test_several_layers_in_one_tile(client, operator):
    layers = decode(client.get(tile_path("grids,incident_density,response", NEAR, 8), headers=operator).data)
    assert set(layers) == {"grids", "incident_density", "response"}
    density = layers["incident_density"]["features"]
    assert sum(f["properties"]["count"] for f in density) == 8
    assert sum(f["properties"]["sanitation"] for f in density) == 8


def test_filters_select_incidents(client, operator):
    path = tile_path("incidents", NEAR, 8)
    assert client.get(path + "?category=dispute", headers=operator).status_code == 204
    features = decode(client.get(path + "?status=reported&period=2026-06", headers=operator).data)
    assert sum(f["properties"]["count"] for f in features["incidents"]["features"]) == 8
    assert client.get(path + "?period=2025", headers=operator).status_code == 204


def test_equal_filters_share_one_cache_entry(client, operator):
    path = tile_path("incidents", NEAR, 9)
    first = client.get(path + "?category=sanitation,dispute&period=2026-01..2026-12", headers=operator)
    second = client.get(path + "?period=2026-01..2026-12&category=dispute,sanitation", headers=operator)
    assert first.headers["X-Tile-Cache"] == "miss"
    assert second.headers["X-Tile-Cache"] == "hit"
    assert first.headers["ETag"] == second.headers["ETag"]


def test_etag_revalidation_and_gzip(client, operator):
    path = tile_path("grids", NEAR, 12)
    response = client.get(path, headers=operator)
    assert response.headers["Cache-Control"] == "private, no-cache"
    etag = response.headers["ETag"]
    assert client.get(path, headers={**operator, "If-None-Match": etag}).status_code == 304
    zipped = client.get(path, headers={**operator, "Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == response.data
    assert zipped.headers["ETag"] == etag


def test_the_role_is_part_of_the_cache_key(client, operator):
    path = tile_path("grids", NEAR, 14)
    public = client.get(path)
    staff = client.get(path, headers=operator)
    assert public.headers["ETag"] != staff.headers["ETag"]
    assert staff.headers["X-Tile-Cache"] == "miss"


def test_empty_tile_is_204(client):
    assert client.get(tile_path("grids", (0.5, 0.5), 10)).status_code == 204


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/tiles/grids/10/805/422.mvt?colour=red", "colour"),
        ("/tiles/grids/10/805/422.mvt?category=Bad!", "category"),
        ("/tiles/incident_density/10/805/422.mvt?status=lost", "status"),
        ("/tiles/incident_density/10/805/422.mvt?period=2026-13", "period"),
        ("/tiles/incident_density/10/805/422.mvt?period=2026-05..2026-01", "period"),
        ("/tiles/grids/10/805/422.mvt?period=2026", "period"),
        ("/tiles/grids/23/0/0.mvt", "z"),
        ("/tiles/grids/%C2%B2/0/0.mvt", "z"),  # "²": a digit to str.isdigit(), not to int()
        ("/tiles/incidents/10/805/422.mvt?period=0000", "period"),
        ("/tiles/incidents/10/805/422.mvt?period=9999-12", "period"),
        ("/tiles/grids/x/0/0.mvt", "z"),
        ("/tiles/grids/10/1024/0.mvt", "x"),
        ("/tiles/grids/10/0/-1.mvt", "y"),
    ],
)
def test_bad_requests_name_the_field(client, path, field):
    response = client.get(path)
    assert response.status_code == 400
    assert response.json["error"]["field"] == field


def test_unknown_layer_is_404(client):
    response = client.get("/tiles/grids,rivers/10/805/422.mvt")
    assert response.status_code == 404
    assert response.json["error"]["field"] == "layer"


def test_concurrent_misses_build_a_tile_once(app, client, operator):
    path = tile_path("incident_density", NEAR, 11)
    client.get("/tiles/index.json")  # start the listener before the race
    service = app.extensions["gridwatch.tiles"]
    service.listener.ensure_started()
    before = service.cache.builds
    barrier = threading.Barrier(8)
    etags = []

    def fetch():
        local = app.test_client()
        barrier.wait()
        etags.append(local.get(path).headers["ETag"])

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(etags)) == 1 and len(etags) == 8
    assert service.cache.builds - before == 1
