"""The live map, the incident card and the work queues in Chromium, as an operator and as a
leader, against the real app and database (tests/browser/conftest.py)."""

from __future__ import annotations

import re

import psycopg
import pytest
from playwright.sync_api import Page, expect

from server.auth.users import set_password

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
MAP_READY = "() => window.gridwatchLive && gridwatchLive.map && gridwatchLive.map.loaded()"


def log_in(page: Page, live_server, database_url: str, username: str) -> None:
    """Give the fixture user a password and log in through the API (the session the dashboard shares)."""
    with psycopg.connect(database_url) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE username = %s", [username]).fetchone()[0]
        set_password(conn, user_id=user_id, password=PASSWORD)
    response = page.request.post(
        f"{live_server.url}/api/v1/auth/login", data={"username": username, "password": PASSWORD}
    )
    assert response.ok, response.text()


def open_map(page: Page, live_server, query: str = "") -> None:
    page.goto(f"{live_server.url}/dashboard/map{query}")
    page.wait_for_function(MAP_READY)
    page.wait_for_function("() => gridwatchLive.map.areTilesLoaded()")


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
    page.wait_for_timeout(500)
    screenshot("dashboard-map-zh")


def test_queues_list_new_reports_and_a_row_opens_the_card_on_the_map(live_server, page, database_url):
    log_in(page, live_server, database_url, "operator1")
    page.goto(f"{live_server.url}/dashboard/queues")
    expect(page.locator("#queue-tab-new")).to_contain_text("(8)")
    rows = page.locator("#queue-rows tr")
    expect(rows).to_have_count(8)
    page.locator("#queue-rows td.gw-cell-grid a").first.click()
    expect(page).to_have_url(re.compile(r"/dashboard/map\?lang=zh&incident=\d+$"))
    expect(page.locator("#card-title")).to_contain_text("#")
    page.wait_for_function(MAP_READY)
