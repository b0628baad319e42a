"""The live map, the incident card and the work queues in Chromium, as an operator and as a
leader, against the real app and database (tests/browser/conftest.py)."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import psycopg
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from psycopg.rows import dict_row

from server.auth.users import set_password
from server.clock import CLOCK_KEY
from server.tiles.geo import density_cell, density_tiles, tile_fraction

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
MAP_READY = "() => window.gridwatchLive && gridwatchLive.map && gridwatchLive.map.loaded()"


def log_in(page: Page, live_server, database_url: str, username: str) -> str:
    """Give the fixture user a password and log in through the API (the session the dashboard
    shares); returns the session's CSRF token for API writes."""
    with psycopg.connect(database_url) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE username = %s", [username]).fetchone()[0]
        set_password(conn, user_id=user_id, password=PASSWORD)
    response = page.request.post(
        f"{live_server.url}/api/v1/auth/login", data={"username": username, "password": PASSWORD}
    )
    assert response.ok, response.text()
    return response.json()["csrf_token"]


def open_map(page: Page, live_server, query: str = "") -> None:
    page.goto(f"{live_server.url}/dashboard/map{query}")
    page.wait_for_function(MAP_READY)
    page.wait_for_function("() => gridwatchLive.map.areTilesLoaded()")


def jump_and_settle(page: Page, lon: float, lat: float, zoom: int) -> None:
    page.evaluate(
        """([lon, lat, zoom]) => new Promise((done) => {
            gridwatchLive.map.once("idle", done);
            gridwatchLive.map.jumpTo({center: [lon, lat], zoom: zoom});
        })""",
        [lon, lat, zoom],
    )


def drawn_incident(page: Page, incident_id: int) -> dict | None:
    """The properties of an incident point in the loaded incident tiles, or None."""
    return page.evaluate(
        """(id) => {
            const found = gridwatchLive.map.querySourceFeatures("incidents", {sourceLayer: "incidents"})
                .find((feature) => feature.id === id);
            return found ? found.properties : null;
        }""",
        incident_id,
    )


def first_incident(database_url: str) -> dict:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM incidents ORDER BY id LIMIT 1"
        ).fetchone()


def test_operator_sees_the_live_map_with_tiles_and_counters(live_server, page, database_url, screenshot):
    log_in(page, live_server, database_url, "operator1")
    tiles = []
    page.on("response", lambda response: "/tiles/" in response.url and tiles.append(response))
    open_map(page, live_server)

    expect(page.locator("#user-role")).to_have_text("指挥中心调度员")
    expect(page.locator("#counter-open")).to_have_text("8")
    expect(page.locator("#counter-overdue")).to_have_text("0")
    assert {response.status for response in tiles} <= {200, 204, 304}
    assert any("/tiles/grids/" in response.url and response.status == 200 for response in tiles)
    grids = page.evaluate("() => gridwatchLive.map.queryRenderedFeatures({layers: ['grid-fill']}).length")
    assert grids > 0
    page.wait_for_timeout(300)
    screenshot("dashboard-map-zh")

    # The shell's category filter changes the incident tile requests (not the grids').
    # Waiting on the response itself: areTilesLoaded() is already true in the frame before a
    # source starts requesting, and the Python response callback may run after it.
    tiles.clear()
    page.locator("#filter-category").click()
    with page.expect_response(
        lambda r: "/tiles/incidents/" in r.url and r.url.endswith("?category=sanitation")
    ):
        page.get_by_role("option", name="环境卫生").click()
    page.keyboard.press("Escape")  # a multi-select stays open over the map's controls
    page.wait_for_function("() => gridwatchLive.query === '?category=sanitation'")
    expect(page.locator("#counter-open")).to_have_text("8")
    assert not any("/tiles/grids/" in r.url and "category" in r.url for r in tiles)

    # The heatmap switch adds the density layer, with the same filter, and its legend.
    assert not any("/tiles/incident_density/" in r.url for r in tiles)
    expect(page.locator("#legend-heatmap")).to_be_hidden()
    with page.expect_response(
        lambda r: "/tiles/incident_density/" in r.url and r.url.endswith("?category=sanitation")
    ) as density:
        page.locator("#map-layers").get_by_text("热力图").click()
    assert density.value.status in {200, 204}
    page.wait_for_function("() => gridwatchLive.map.getLayoutProperty('density', 'visibility') === 'visible'")
    expect(page.locator("#legend-heatmap")).to_contain_text("热力图（每个六边形的事件数）")


def test_an_incident_filed_through_the_api_appears_on_the_open_map(live_server, page, database_url):
    csrf = log_in(page, live_server, database_url, "operator1")
    open_map(page, live_server)
    lon, lat = 103.31, 29.86
    jump_and_settle(page, lon, lat, 15)
    refetched = []
    page.on("request", lambda request: "/tiles/incidents/" in request.url and refetched.append(request.url))

    response = page.request.post(
        f"{live_server.url}/api/v1/incidents",
        data={"lon": lon, "lat": lat, "category": "safety_hazard", "description": "燃气管道泄漏"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 201, response.text()
    new_id = response.json()["id"]

    # No reload: the change feed makes the page refetch the tile, and only that tile.
    page.wait_for_function(
        """(id) => gridwatchLive.map.querySourceFeatures("incidents", {sourceLayer: "incidents"})
            .some((feature) => feature.id === id)""",
        arg=new_id,
        timeout=10_000,
    )
    fx, fy = tile_fraction(lon, lat, 15)
    assert {url.split("/tiles/incidents/")[1] for url in refetched} == {f"15/{int(fx)}/{int(fy)}.mvt"}
    assert drawn_incident(page, new_id)["status"] == "reported"
    expect(page.locator("#counter-new_today")).to_have_text("1")
    expect(page.locator("#counter-open")).to_have_text("9")

    # Clicking the new point opens its card.
    x, y = page.evaluate(
        "([lon, lat]) => { const p = gridwatchLive.map.project([lon, lat]); return [p.x, p.y]; }", [lon, lat]
    )
    box = page.locator("#live-map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    expect(page.locator("#card-title")).to_have_text(f"事件 #{new_id}")
    expect(page.locator("#card-category")).to_have_text("安全隐患")


def test_a_new_incident_refetches_the_heatmap_tiles_its_hexagon_crosses(live_server, page, database_url):
    csrf = log_in(page, live_server, database_url, "operator1")
    open_map(page, live_server)
    with page.expect_response(lambda r: "/tiles/incident_density/" in r.url):
        page.locator("#map-layers").get_by_text("热力图").click()
    # A point whose zoom-12 hexagon (resolution 8) lies in two tiles.
    z = 12
    lon, lat = next(
        (103.31 + step * 0.0005, 29.86)
        for step in range(400)
        if len(density_tiles(103.31 + step * 0.0005, 29.86, z, filtered=False)) > 1
    )
    jump_and_settle(page, lon, lat, z)
    page.wait_for_function("() => gridwatchLive.map.areTilesLoaded()")
    refetched = []
    page.on(
        "request", lambda request: "/tiles/incident_density/" in request.url and refetched.append(request.url)
    )

    response = page.request.post(
        f"{live_server.url}/api/v1/incidents",
        data={"lon": lon, "lat": lat, "category": "sanitation", "description": "垃圾堆放"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 201, response.text()

    # The hexagon now counts the new incident in every tile it crosses.
    # By its `h3` property: the 64-bit feature id loses precision in a JavaScript number.
    cell = format(density_cell(lon, lat, 8), "x")
    page.wait_for_function(
        """(cell) => {
            const pieces = gridwatchLive.map.querySourceFeatures("density", {sourceLayer: "incident_density"})
                .filter((feature) => feature.properties.h3 === cell);
            return pieces.length > 1 && pieces.every((feature) => feature.properties.count === 1);
        }""",
        arg=cell,
        timeout=10_000,
    )
    touched = density_tiles(lon, lat, z, filtered=False) | density_tiles(lon, lat, z, filtered=True)
    assert {url.split("/tiles/incident_density/")[1] for url in refetched} == {
        f"{z}/{x}/{y}.mvt" for x, y in touched
    }


def test_operator_accepts_and_dispatches_from_the_card(live_server, page, database_url, screenshot):
    log_in(page, live_server, database_url, "operator1")
    incident = first_incident(database_url)
    open_map(page, live_server, f"?incident={incident['id']}")
    expect(page.locator("#card-status")).to_have_text("待受理")
    expect(page.locator("#card-timeline li")).to_have_count(1)

    page.locator(".gw-action-accept").click()
    expect(page.locator("#card-done")).to_contain_text("立案")
    expect(page.locator("#card-status")).to_have_text("已立案")
    page.locator(".gw-action-dispatch").click()
    expect(page.locator("#card-status")).to_have_text("已派遣")
    expect(page.locator("#card-department-name")).to_have_text("综合行政执法局")
    expect(page.locator("#card-warning")).to_contain_text("正常")
    expect(page.locator("#card-timeline li")).to_have_count(3)
    # The map follows through the change feed.
    page.wait_for_function(
        """(id) => gridwatchLive.map.querySourceFeatures("incidents", {sourceLayer: "incidents"})
            .some((feature) => feature.id === id && feature.properties.status === "dispatched")""",
        arg=incident["id"],
        timeout=10_000,
    )
    screenshot("dashboard-incident-card")

    # An hour past its due time the case is overdue: the next change on the feed refreshes the
    # counters and rings the point in red. (The due time counts working time: on a Friday it is
    # next week, so "two days later" was not always late.)
    with psycopg.connect(database_url) as conn:
        due_at = conn.execute("SELECT due_at FROM incidents WHERE id = %s", [incident["id"]]).fetchone()[0]
    later = due_at + timedelta(hours=1)
    live_server.app.extensions[CLOCK_KEY] = lambda: later
    with psycopg.connect(database_url) as conn:  # the operator kept working meanwhile
        conn.execute("UPDATE login_sessions SET last_seen_at = %s", [later])
    page.locator(".gw-action-escalate").click()
    expect(page.locator("#card-warning")).to_contain_text("已超期")
    expect(page.locator("#counter-overdue")).to_have_text("1")
    page.wait_for_function(
        """(id) => gridwatchLive.map.getFeatureState(
            {source: "incidents", sourceLayer: "incidents", id: id}).overdue === true""",
        arg=incident["id"],
    )
    del live_server.app.extensions[CLOCK_KEY]

    # Rejecting another report (with the reason the workflow requires) lowers the open counter.
    expect(page.locator("#counter-open")).to_have_text("8")
    open_map(page, live_server, f"?incident={incident['id'] + 1}")
    page.locator(".gw-action-reject").click()
    expect(page.locator("#card-error")).to_have_text("请填写原因")  # the page's language only
    page.locator("#card-note").fill("不属于受理范围")
    page.locator(".gw-action-reject").click()
    expect(page.locator("#card-status")).to_have_text("不予立案")
    expect(page.locator("#counter-open")).to_have_text("7")


def test_a_leader_reads_the_card_but_gets_no_action_buttons(live_server, page, database_url):
    log_in(page, live_server, database_url, "leader1")
    incident = first_incident(database_url)
    open_map(page, live_server, f"?incident={incident['id']}")
    expect(page.locator("#user-role")).to_have_text("领导")
    expect(page.locator("#card-status")).to_have_text("待受理")
    expect(page.locator("#card-read-only")).to_be_visible()
    expect(page.locator(".gw-action")).to_have_count(0)
    expect(page.locator("#counter-open")).to_have_text("8")


def test_the_language_switch_changes_the_map_labels(live_server, page, database_url, screenshot):
    log_in(page, live_server, database_url, "operator1")
    open_map(page, live_server)
    expect(page.locator(".gw-counter-open div")).to_have_text("在办")

    page.locator("#language-en").click()
    expect(page).to_have_url(re.compile(r"/dashboard/map\?lang=en(&|$)"))
    expect(page.locator(".gw-counter-open div")).to_have_text("Open")
    expect(page.locator(".gw-counter-closed_today div")).to_have_text("Closed today")
    expect(page.locator("#nav-map")).to_have_text("Live map")
    expect(page.locator("#user-role")).to_have_text("Operator")
    expect(page.locator("#map-legend summary")).to_have_text("Legend")
    expect(page.locator("#map-layers")).to_contain_text("Heatmap")
    expect(page.locator("#filter-category")).to_contain_text("All categories")
    page.wait_for_function(MAP_READY)
    page.wait_for_function("() => gridwatchLive.map.areTilesLoaded()")
    page.wait_for_timeout(300)
    screenshot("dashboard-map-en")


def test_queues_sort_filter_and_a_row_opens_the_card_on_the_map(live_server, page, database_url):
    log_in(page, live_server, database_url, "operator1")
    page.goto(f"{live_server.url}/dashboard/queues")
    expect(page.locator("#queue-tab-new")).to_contain_text("(8)")
    rows = page.locator("#queue-rows tr")
    expect(rows).to_have_count(8)
    ids = page.locator("#queue-rows td.gw-cell-id")
    oldest_first = ids.all_inner_texts()
    assert oldest_first == sorted(oldest_first, key=lambda text: int(text.lstrip("#")))

    page.get_by_role("button", name="编号").click()
    page.get_by_role("button", name="编号").click()  # second click: descending
    expect(ids.first).to_have_text(oldest_first[-1])
    page.locator("#queue-search").fill("511423002002002")
    page.locator("#queue-search").press("Enter")
    expect(rows).to_have_count(1)

    rows.first.locator("td.gw-cell-grid a").click()
    expect(page).to_have_url(re.compile(r"/dashboard/map\?lang=zh&incident=\d+(&|$)"))
    expect(page.locator("#card-title")).to_have_text(f"事件 {oldest_first[-1]}")
    page.wait_for_function(MAP_READY)


def test_the_filters_are_kept_across_pages(live_server, page, database_url):
    log_in(page, live_server, database_url, "operator1")
    open_map(page, live_server)
    page.locator("#filter-category").click()
    page.get_by_role("option", name="矛盾纠纷").click()
    page.wait_for_function("() => gridwatchLive.query === '?category=dispute'")
    expect(page.locator("#counter-open")).to_have_text("0")

    page.locator("#nav-queues").click()
    expect(page.locator("#queue-tab-new")).to_contain_text("(0)")
    expect(page.locator("#filter-category")).to_contain_text("矛盾纠纷")
    page.reload()  # kept for the browser tab, not only while the page lives
    expect(page.locator("#queue-tab-new")).to_contain_text("(0)")

    page.locator("#nav-map").click()
    page.wait_for_function(MAP_READY)
    page.wait_for_function("() => gridwatchLive.query === '?category=dispute'")


def test_a_configured_basemap_is_drawn_under_the_shifted_overlay(live_server, page, database_url):
    # A county tile server stand-in on this machine: one plain PNG for every tile.
    tile = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 220, 240)).save(tile, format="PNG")
    served = []

    def basemap_tile(route):
        served.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=tile.getvalue())

    page.route(f"{live_server.url}/county-basemap/**", basemap_tile)
    settings = live_server.app.extensions["gridwatch.settings"]
    settings.basemap_url = f"{live_server.url}/county-basemap/{{z}}/{{x}}/{{y}}.png"
    settings.basemap_attribution = "© 洪雅县自然资源局"
    settings.basemap_crs = "gcj02"
    log_in(page, live_server, database_url, "operator1")
    open_map(page, live_server)

    assert served and all(url.endswith(".png") for url in served)
    expect(page.locator(".maplibregl-ctrl-attrib")).to_contain_text("© 洪雅县自然资源局")
    translate = page.evaluate("() => gridwatchLive.map.getPaintProperty('grid-fill', 'fill-translate')")
    assert translate[:3] == ["interpolate", ["exponential", 2], ["zoom"]]
    assert page.evaluate("() => gridwatchLive.map.getStyle().layers[0].id") == "basemap"


def test_leaving_the_map_closes_its_change_feed(live_server, page, database_url):
    log_in(page, live_server, database_url, "operator1")
    open_map(page, live_server)
    assert page.evaluate("() => gridwatchLive.events.readyState") == 1  # open
    page.locator("#nav-queues").click()
    expect(page.locator("#queue-tab-new")).to_contain_text("(8)")
    page.wait_for_function("() => gridwatchLive.map === null && gridwatchLive.events === null")


def test_the_filters_and_the_view_are_kept_in_the_url(live_server, page, database_url):
    log_in(page, live_server, database_url, "operator1")
    open_map(page, live_server)
    page.locator("#filter-category").click()
    page.get_by_role("option", name="矛盾纠纷").click()
    page.locator("#map-status").click()
    page.get_by_role("option", name="待受理").click()
    page.locator("#filter-period").click()
    page.get_by_role("option", name="本月").click()
    page.wait_for_function("() => gridwatchLive.query.includes('period=')")
    jump_and_settle(page, 103.31, 29.86, 13.5)
    expect(page).to_have_url(
        re.compile(r"\?category=dispute&status=reported&period=month&view=103\.31000,29\.86000,13\.50$")
    )
    query = page.evaluate("() => gridwatchLive.query")
    assert query.startswith("?category=dispute&status=reported&period=")

    # A reload opens the same map: same tile filters, same place, same controls.
    page.reload()
    page.wait_for_function(MAP_READY)
    page.wait_for_function("(query) => gridwatchLive.query === query", arg=query)
    centre = page.evaluate("() => { const c = gridwatchLive.map.getCenter(); return [c.lng, c.lat]; }")
    assert centre == pytest.approx([103.31, 29.86], abs=1e-4)
    assert page.evaluate("() => gridwatchLive.map.getZoom()") == pytest.approx(13.5, abs=0.01)
    expect(page.locator("#filter-category")).to_contain_text("矛盾纠纷")
    expect(page.locator("#map-status")).to_contain_text("待受理")
    expect(page.locator("#filter-period")).to_contain_text("本月")
    expect(page.locator("#counter-open")).to_have_text("0")

    # A shared link wins over the filters this tab kept.
    page.goto(f"{live_server.url}/dashboard/map?category=sanitation&period=all&view=103.30000,29.85000,12.00")
    page.wait_for_function(MAP_READY)
    page.wait_for_function("() => gridwatchLive.query === '?category=sanitation'")
    expect(page.locator("#filter-category")).to_contain_text("环境卫生")
    expect(page.locator("#filter-period")).to_contain_text("全部时间")
    expect(page.locator("#counter-open")).to_have_text("8")
    assert page.evaluate("() => gridwatchLive.map.getZoom()") == pytest.approx(12, abs=0.01)
    expect(page).to_have_url(
        re.compile(r"\?category=sanitation&period=all&view=103\.30000,29\.85000,12\.00$")
    )
