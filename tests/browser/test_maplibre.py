"""MapLibre GL JS, served by gridwatch from npm's package, draws with WebGL in headless Chromium."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

SMOKE_PAGE = Path(__file__).with_name("maplibre_smoke.html")

READ_PIXEL = """([lon, lat]) => {
    const {x, y} = smokeMap.project([lon, lat]);
    const source = smokeMap.getCanvas();
    const copy = document.createElement("canvas");
    copy.width = source.width;
    copy.height = source.height;
    const context = copy.getContext("2d");
    context.drawImage(source, 0, 0);
    const ratio = window.devicePixelRatio;
    return Array.from(context.getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data);
}"""

FEATURES_AT = """([lon, lat]) => smokeMap
    .queryRenderedFeatures(smokeMap.project([lon, lat]), {layers: ["townships"]})
    .map(feature => feature.properties.code)"""


def test_maplibre_renders_a_geojson_source_without_a_basemap(live_server, page, screenshot):
    # The page is the test's own; everything it loads comes from the live server.
    url = f"{live_server.url}/__tests__/maplibre-smoke.html"
    page.route(url, lambda route: route.fulfill(content_type="text/html", body=SMOKE_PAGE.read_text()))
    page.goto(url)
    page.wait_for_function("window.mapEvents && window.mapEvents.includes('idle')")

    assert page.evaluate("mapEvents[0]") == "load"
    assert page.evaluate("smokeMap.getCanvas().getContext('webgl2') !== null")
    assert page.evaluate(FEATURES_AT, [103.325, 29.90]) == ["511423001"]
    assert page.evaluate(FEATURES_AT, [103.375, 29.90]) == ["511423002"]
    assert page.evaluate(FEATURES_AT, [103.45, 29.90]) == []
    # Drawn, not only indexed: the fill colours are on the canvas.
    assert page.evaluate(READ_PIXEL, [103.325, 29.90]) == [255, 0, 0, 255]
    assert page.evaluate(READ_PIXEL, [103.375, 29.90]) == [0, 0, 255, 255]
    assert page.evaluate(READ_PIXEL, [103.45, 29.90]) == [255, 255, 255, 255]
    screenshot("maplibre-smoke")
