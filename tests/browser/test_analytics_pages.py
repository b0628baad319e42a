"""The leaders' pages in Chromium, as a leader, in Chinese and English: maps and charts drawn,
drill-down from the county to a grid, no console error (the `page` fixture fails on one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from playwright.sync_api import Page, expect
from test_dashboard_live import log_in

pytestmark = pytest.mark.browser

UNITS = "#response-map path.leaflet-interactive"


def add_cases(database_url: str, *, last_month: bool) -> None:
    """Four cases in each grid, last month or this month: received, due, three closed on time,
    one a day late."""
    now = datetime.now(UTC)
    if last_month:
        now = datetime.combine(now.date().replace(day=1), datetime.min.time(), UTC) - timedelta(days=10)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            """INSERT INTO incidents (geom, grid_id, category_code, channel, status, reported_at,
                                      accepted_at, dispatched_at, due_at, resolved_at, verified_at,
                                      closed_at, department_id)
               SELECT ST_PointOnSurface(g.geom), g.id, 'sanitation', 'app', 'closed', r, r, r,
                      r + interval '1 day', c, c, c,
                      (SELECT id FROM departments WHERE code = 'urban_management')
                 FROM grids g,
                      LATERAL (SELECT %(now)s - n * interval '5 hours' AS r,
                                      %(now)s - n * interval '5 hours' + n * interval '7 hours' AS c
                                 FROM generate_series(1, 4) AS n) t
                WHERE g.level = 'grid'""",
            {"now": now if last_month else now - timedelta(hours=30)},
        )


def open_response(page: Page, live_server, lang: str = "zh") -> None:
    page.goto(f"{live_server.url}/dashboard/analytics/response?lang={lang}")
    # Generous: the machine runs other tests beside this one (the speed goal is in bench/).
    expect(page.locator("#bulletin-line")).to_be_visible(timeout=30_000)
    page.wait_for_selector(UNITS)


def test_response_page_draws_the_bulletin_map_table_and_charts_and_drills_down(
    live_server, page, database_url, screenshot
):
    add_cases(database_url, last_month=True)
    log_in(page, live_server, database_url, "leader1")
    open_response(page, live_server)  # "all time" in the header: last month, the bulletin's
    # 32 cases; each grid's fourth case closed a day late.
    expect(page.locator("#bulletin-line")).to_contain_text("接报32件")
    expect(page.locator("#bulletin-line")).to_contain_text("按期结案24件（按期结案率75.00%）")
    expect(page.locator(UNITS)).to_have_count(2)  # the two townships
    expect(page.locator("#response-trend .main-svg").first).to_be_visible()
    expect(page.locator("#response-box .main-svg").first).to_be_visible()
    expect(page.locator("#response-table .ag-center-cols-container .ag-row")).to_have_count(2)
    expect(page.locator("#download-xlsx")).to_have_attribute(
        "href", "/api/v1/analytics/response?" + _xlsx_query()
    )
    screenshot("analytics-response-zh")

    page.locator(UNITS).first.click()  # a township: its villages
    expect(page.locator("#response-breadcrumb button")).to_have_count(2)
    expect(page.locator(UNITS)).to_have_count(2)
    page.locator(UNITS).first.click()  # a village: its grids
    expect(page.locator("#response-breadcrumb button")).to_have_count(3)
    page.locator("#response-table a").first.click()  # a grid: its page
    expect(page.locator("#grid-name")).to_contain_text("网格")
    expect(page.locator("#grid-figures-table")).to_be_visible()
    expect(page.locator("#grid-trend .main-svg").first).to_be_visible()
    expect(page.locator("#grid-map path.leaflet-interactive").first).to_be_attached()
    screenshot("analytics-grid-zh")

    page.go_back()
    expect(page.locator("#response-breadcrumb button")).to_have_count(1)


def _xlsx_query() -> str:
    from urllib.parse import urlencode

    from dashboard.filters import resolve_period

    period = resolve_period("last_month", datetime.now(UTC))
    return urlencode(
        {
            "by": "township",
            "from": period.first_month.isoformat(),
            "to": period.end_month.isoformat(),
            "lang": "zh",
            "format": "xlsx",
        }
    )


def test_response_page_in_english(live_server, page, database_url):
    log_in(page, live_server, database_url, "leader1")
    open_response(page, live_server, "en")
    expect(page.locator("#bulletin-line")).to_contain_text("received")
    expect(page.locator("#nav-response")).to_have_text("Response")
    page.wait_for_selector("#response-table .ag-row")
    expect(page.locator("#response-table .ag-header-cell-text").filter(has_text="Received")).to_have_count(1)


def test_coverage_page_maps_every_grid_and_lists_the_gaps(live_server, page, database_url, screenshot):
    log_in(page, live_server, database_url, "leader1")
    page.goto(f"{live_server.url}/dashboard/analytics/coverage")
    page.wait_for_selector("#coverage-map .leaflet-overlay-pane canvas")  # drawn on a canvas
    expect(page.locator("#coverage-table .ag-center-cols-container .ag-row")).to_have_count(8)
    expect(page.locator("#coverage-total-no_member")).to_contain_text("无网格员 5")
    expect(page.locator("#coverage-total-unpatrolled")).to_contain_text("未巡查 3")
    screenshot("analytics-coverage-zh")
    page.goto(f"{live_server.url}/dashboard/analytics/coverage?lang=en")
    expect(page.locator("#coverage-total-no_member")).to_contain_text("No member 5")
    page.locator("#coverage-table a").first.click()
    expect(page.locator("#grid-name")).to_be_visible()


def test_hotspot_page_maps_the_classes_and_explains_them(live_server, page, database_url, screenshot):
    add_cases(database_url, last_month=True)
    log_in(page, live_server, database_url, "leader1")
    page.goto(f"{live_server.url}/dashboard/analytics/hotspots")
    page.wait_for_selector("#hotspots-map .leaflet-overlay-pane canvas", timeout=30_000)  # the grids drawn
    expect(page.locator("#hotspots-explanation")).to_contain_text("热点")
    expect(page.locator("#hotspots-explanation .gw-legend-item").first).to_contain_text("99% 置信度")
    screenshot("analytics-hotspots-zh")
    page.goto(f"{live_server.url}/dashboard/analytics/hotspots?lang=en")
    expect(page.locator("#hotspots-explanation")).to_contain_text("hot spots", timeout=30_000)
    page.locator("#hotspots-method").click()
    page.get_by_text("Emerging (last 24 months)").click()
    expect(page.locator("#hotspots-explanation")).to_contain_text("month by month", timeout=30_000)
    page.wait_for_selector("#hotspots-map .leaflet-overlay-pane canvas")


def test_a_link_sets_the_hotspot_controls(live_server, page, database_url):
    """``?unit=h3&method=local_moran`` opens the page on H3 cells with Local Moran; an unknown
    value falls back to the default."""
    log_in(page, live_server, database_url, "leader1")
    page.goto(f"{live_server.url}/dashboard/analytics/hotspots?lang=en&unit=h3&method=local_moran&period=x")
    expect(page.locator("#hotspots-unit")).to_contain_text("Hexagons (H3)")
    expect(page.locator("#hotspots-method")).to_contain_text("Local Moran")
    expect(page.locator("#hotspots-period")).to_contain_text("Last 365 days")
    page.wait_for_selector("#hotspots-map .leaflet-overlay-pane canvas", timeout=30_000)


@pytest.mark.parametrize("username", ["inspector1", "handler1"])
def test_the_hotspot_page_tells_inspectors_and_departments_it_is_not_for_them(
    live_server, page, database_url, username
):
    log_in(page, live_server, database_url, username)
    page.goto(f"{live_server.url}/dashboard/analytics/hotspots")
    expect(page.locator("#hotspots-not-allowed")).to_contain_text("仅供领导")


def test_the_pages_ask_an_anonymous_visitor_to_log_in(live_server, page):
    for path in (
        "/analytics/response",
        "/analytics/coverage",
        "/analytics/hotspots",
        "/grid/511423001001001",
    ):
        page.goto(f"{live_server.url}/dashboard{path}")
        expect(page.locator("#login-required")).to_be_visible()


def test_the_overview_shows_a_leader_the_county_at_a_glance(live_server, page, database_url, screenshot):
    add_cases(database_url, last_month=False)
    log_in(page, live_server, database_url, "leader1")
    page.goto(f"{live_server.url}/dashboard/")
    expect(page.locator("#home-bulletin")).to_contain_text("接报", timeout=30_000)
    expect(page.locator("#home-slowest li")).to_have_count(2)
    expect(page.locator("#home-best li")).to_have_count(2)
    expect(page.locator("#home-coverage li")).to_have_count(4)
    expect(page.locator("#home-trend .main-svg").first).to_be_visible()
    screenshot("dashboard-home-leader-zh")
    page.locator("#home-slowest a").first.click()
    expect(page.locator("#response-breadcrumb button")).to_have_count(2, timeout=30_000)


def test_the_login_page_is_styled_and_shows_no_filters(live_server, page, screenshot):
    page.goto(f"{live_server.url}/dashboard/login")
    expect(page.locator("#filters")).to_have_class("gw-filters gw-filters-hidden")
    colour = page.locator("#login-link").evaluate("(link) => getComputedStyle(link).color")
    assert colour == "rgb(255, 255, 255)"  # on the blue bar (#1f4e79): 8.6:1
    button = page.locator("#login-submit").evaluate("(b) => getComputedStyle(b).backgroundColor")
    assert button == "rgb(31, 78, 121)"
    screenshot("dashboard-login-zh")
    page.goto(f"{live_server.url}/dashboard/queues")
    expect(page.locator("#filters")).to_have_class("gw-filters")
