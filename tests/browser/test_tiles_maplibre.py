"""MapLibre GL JS renders every gridwatch tile layer from its TileJSON in headless Chromium, with
no console error (the ``page`` fixture fails the test on any)."""

from pathlib import Path

import pytest
from tiles_support import token_for

from layers.catalog import LAYERS

pytestmark = pytest.mark.browser

TILES_PAGE = Path(__file__).with_name("tiles_page.html")
STYLE_LAYERS = {
    "grids": "grids",
    "incidents": "incidents",
    "incident_density": "density",
    "coverage": "coverage",
    "response": "response",
}
RENDERED = """(styleLayer) => tileMap.queryRenderedFeatures({layers: [styleLayer]}).map(f => f.properties)"""


def test_maplibre_renders_every_tile_layer(live_server, page, database_url, screenshot):
    assert set(STYLE_LAYERS) == set(LAYERS)
    body = TILES_PAGE.read_text().replace("__TOKEN__", token_for(database_url, "admin1"))
    url = f"{live_server.url}/__tests__/tiles.html"
    page.route(url, lambda route: route.fulfill(content_type="text/html", body=body))
    page.goto(url)
    page.wait_for_function("window.mapEvents && window.mapEvents.includes('idle')")

    rendered = {name: page.evaluate(RENDERED, style) for name, style in STYLE_LAYERS.items()}
    assert {p["level"] for p in rendered["grids"]} == {"village"}
    assert sum(p["count"] for p in rendered["incidents"]) == 8
    # A hexagon crossing a tile edge is drawn (and queried) once per tile.
    assert sum({p["h3"]: p["count"] for p in rendered["incident_density"]}.values()) == 8
    assert len({p["code"] for p in rendered["coverage"]}) == 8
    assert len({p["code"] for p in rendered["response"]}) == 4
    screenshot("tiles-all-layers")

    page.evaluate("mapEvents.length = 0; tileMap.jumpTo({center: [103.3125, 29.875], zoom: 16})")
    page.wait_for_function("window.mapEvents.includes('idle')")
    points = page.evaluate(RENDERED, "incidents")
    assert [p["category"] for p in points] == ["sanitation"]
