"""The browser packages from npm are served by gridwatch itself, and nothing else of node_modules."""

import json

from server.vendor import NODE_MODULES


def test_serves_maplibre_from_the_locked_npm_package(client):
    locked = json.loads((NODE_MODULES.parent / "package-lock.json").read_text())
    installed = json.loads((NODE_MODULES / "maplibre-gl" / "package.json").read_text())
    assert installed["version"] == locked["packages"]["node_modules/maplibre-gl"]["version"]

    # Files are streamed: each response is closed so its file handle is too.
    with client.get("/vendor/maplibre-gl/maplibre-gl.js") as script:
        assert script.status_code == 200
        assert script.mimetype in ("text/javascript", "application/javascript")
        assert b"maplibre" in script.get_data()[:2000].lower()

    with client.get("/vendor/maplibre-gl/maplibre-gl.css") as stylesheet:
        assert stylesheet.status_code == 200
        assert stylesheet.mimetype == "text/css"
        etag = stylesheet.headers["ETag"]
    with client.get("/vendor/maplibre-gl/maplibre-gl.css", headers={"If-None-Match": etag}) as revalidated:
        assert revalidated.status_code == 304


def test_an_unlisted_package_is_not_served(client):
    response = client.get("/vendor/kdbush/package.json")
    assert response.status_code == 404
    assert response.get_json()["error"]["field"] == "package"


def test_paths_outside_the_published_folder_are_refused(client):
    for path in (
        "/vendor/maplibre-gl/../package.json",
        "/vendor/maplibre-gl/%2e%2e/package.json",
        "/vendor/maplibre-gl/no-such-file.js",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.is_json, path
