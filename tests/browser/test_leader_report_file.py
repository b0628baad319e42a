"""The leader report file opened in Chromium from disk, with every request outside the file
refused and recorded (the `page` fixture fails on one, and on any console or page error): it
makes none, and draws its maps and charts."""

from __future__ import annotations

import psycopg
import pytest
from playwright.sync_api import expect
from psycopg.rows import dict_row
from test_analytics_pages import add_cases

from server import clock
from server.leader_report.service import make_report
from server.settings import Settings

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_report_opens_without_a_network_and_draws_its_maps_and_charts(page, database_url, tmp_path, lang):
    add_cases(database_url, last_month=True)
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        html, name = make_report(
            conn, start=None, end=None, area=None, lang=lang, made_by="leader1",
            settings=Settings(database_url=database_url, secret_key="t"), now=clock.now(),
        )  # fmt: skip
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    fetched = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(path.as_uri())
    # Both maps draw the units (SVG paths) and their place names; both charts are drawn.
    expect(page.locator(".folium-map")).to_have_count(2)
    for fmap in page.locator(".folium-map").all():
        expect(fmap.locator("path.leaflet-interactive").first).to_be_attached()
        expect(fmap.locator(".place-name").first).to_be_visible()
    expect(page.locator("#trend-0 .main-svg").first).to_be_attached()
    expect(page.locator("#trend-1 .main-svg").first).to_be_attached()
    assert page.locator("#trend-0 .bars path").count() > 0
    # The layer switch works offline (its icon is inlined) and shows the heatmap's canvas.
    heat = page.locator(".leaflet-control-layers-overlays label").filter(
        has_text="热力" if lang == "zh" else "density"
    )
    heat.locator("input").check()
    expect(page.locator("canvas.leaflet-heatmap-layer")).to_have_count(1)
    assert [url for url in fetched if url != path.as_uri() and not url.startswith("data:")] == []


# A4 less the report's @page margins (12 mm each side, 14 mm top and bottom), in CSS pixels.
PRINTABLE_WIDTH_PX = (210 - 24) / 25.4 * 96
PRINTABLE_HEIGHT_PX = (297 - 28) / 25.4 * 96


FRAMING = """(element) => {
  const map = window[element.id], shown = gridwatchShownBounds(map), view = map.getBounds();
  const share = Math.max(
    (shown.getNorth() - shown.getSouth()) / (view.getNorth() - view.getSouth()),
    (shown.getEast() - shown.getWest()) / (view.getEast() - view.getWest()));
  return {inside: view.contains(shown), share: share};
}"""


def test_the_report_prints_on_a4_with_nothing_cut(page, database_url, tmp_path):
    """Opened on a screen, then printed: laid out at the page's width, no map, chart or table is
    wider than the page, no map or chart is taller than one, each map frames what it shows again
    (whole, filling most of the map), and the maps and the tables each start a page; Chromium's
    PDF has a few A4 pages."""
    add_cases(database_url, last_month=True)
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        html, name = make_report(
            conn, start=None, end=None, area=None, lang="zh", made_by="leader1",
            settings=Settings(database_url=database_url, secret_key="t"), now=clock.now(),
        )  # fmt: skip
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(path.as_uri())
    expect(page.locator(".folium-map path.leaflet-interactive").first).to_be_attached()
    page.set_viewport_size({"width": round(PRINTABLE_WIDTH_PX), "height": 1000})
    page.emulate_media(media="print")
    for selector in (".folium-map", ".chart", "table"):
        for box in (element.bounding_box() for element in page.locator(selector).all()):
            assert box["width"] <= PRINTABLE_WIDTH_PX + 1, (selector, box)
            if selector != "table":  # long tables break between rows, their header repeated
                assert box["height"] <= PRINTABLE_HEIGHT_PX, (selector, box)
    for fmap in page.locator(".folium-map").all():
        framing = fmap.evaluate(FRAMING)
        assert framing["inside"] and framing["share"] >= 0.7, framing
    for section in ("section.maps", "section.tables"):
        assert page.locator(section).evaluate("(s) => getComputedStyle(s).breakBefore") == "page"
    pdf = page.pdf(format="A4", print_background=True)
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert 3 <= pages <= 10, pages
