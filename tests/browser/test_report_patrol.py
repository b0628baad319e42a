"""Patrols on the phone page ``/report`` in Chromium with a faked GPS: record a walk (through a
reload), end it without a connection, and see it recorded exactly once when the phone is back
online; a check-in of one fix whose first answer is lost is still recorded once."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Route, expect
from report_support import fits_the_phone_width, log_in_on_the_phone

pytestmark = pytest.mark.browser

OWN_GRID = "511423001001001"  # inspector1's: lon 103.300-103.325, lat 29.85-29.90
START = {"longitude": 103.3105, "latitude": 29.87, "accuracy": 10}


def recorded_patrols(conn) -> list[dict]:
    conn.commit()  # a fresh snapshot: the server wrote on its own connections
    return conn.execute(
        """SELECT p.id, g.code AS grid, ST_AsGeoJSON(p.geom, 6)::json AS track,
                  ST_Length(p.geom::geography) AS length_m, p.started_at, p.ended_at,
                  (SELECT count(*) FROM idempotency_keys k WHERE k.patrol_id = p.id) AS keys
             FROM patrols p JOIN grids g ON g.id = p.grid_id ORDER BY p.id"""
    ).fetchall()


def listed_patrol_ids(page: Page, live_server) -> list[int]:
    """GET /api/v1/patrols with the phone's own session: the inspector's patrols."""
    response = page.request.get(f"{live_server.url}/api/v1/patrols")
    assert response.ok, response.text()
    return [feature["id"] for feature in response.json()["features"]]


def walk_to(page: Page, lon: float, lat: float, accuracy: float = 10) -> None:
    page.context.set_geolocation({"longitude": lon, "latitude": lat, "accuracy": accuracy})


@pytest.fixture
def patrolling_phone(live_server, page: Page, conn) -> Page:
    """Logged in on the phone, standing in the middle of the own grid."""
    return log_in_on_the_phone(page, live_server, conn, position=START)


def test_a_patrol_recorded_through_a_reload_and_ended_offline_is_sent_once_online(
    patrolling_phone: Page, conn, live_server, screenshot
):
    page = patrolling_phone
    stats = page.locator("#patrol-stats")
    expect(page.locator("#patrol-status")).to_contain_text("巡查时记录您走过的轨迹")
    page.click("#patrol-start")
    expect(page.locator("#patrol-status")).to_have_text("巡查中：请保持此页面打开")
    expect(page.locator("#patrol-end")).to_have_text("结束巡查")
    expect(stats).to_contain_text("1 个定位点")
    expect(stats).to_have_text(re.compile(r"^用时 0:00:\d\d · 里程 0 米 · 1 个定位点$"))
    walk_to(page, 103.3115, 29.87)  # about 97 m east
    expect(stats).to_contain_text("2 个定位点")
    # A fix worse than 100 m is not recorded, and the page says so.
    walk_to(page, 103.3125, 29.87, accuracy=150)
    expect(page.locator("#patrol-fix")).to_contain_text("±150 米，超过 100 米，此定位未记录")
    expect(stats).to_contain_text("2 个定位点")
    walk_to(page, 103.3125, 29.87)
    expect(stats).to_contain_text("3 个定位点")
    expect(page.locator("#patrol-fix")).to_be_hidden()
    walk_to(page, 103.3125, 29.871)  # about 111 m north
    expect(stats).to_contain_text("4 个定位点")
    expect(stats).to_contain_text("里程 304 米")
    page.wait_for_function("gridwatchReportMap.queryRenderedFeatures({layers: ['track']}).length > 0")
    screenshot("report-patrolling-zh")

    # A reload mid-patrol loses nothing: the track so far comes back and goes on. (The page has
    # started when it has asked for the patrols, its last request before the change feed.)
    with page.expect_response(lambda response: "/api/v1/patrols?" in response.url):
        page.reload()
    expect(page.locator("#patrol-status")).to_have_text("巡查中：请保持此页面打开")
    expect(stats).to_contain_text("4 个定位点")
    walk_to(page, 103.3135, 29.871)
    expect(stats).to_contain_text("5 个定位点")
    expect(stats).to_contain_text("里程 400 米")

    # Ended without a connection: it waits in the outbox with the reports.
    page.context.set_offline(True)
    expect(page.locator("#connection")).to_be_visible()
    page.click("#patrol-end")
    expect(page.locator("#patrol-message")).to_have_text("巡查已保存，联网后自动上传")
    expect(page.locator("#patrol-start")).to_be_visible()
    expect(page.locator("#queue-count")).to_have_text("1")
    waiting = page.locator("#queue li.patrol")
    expect(waiting).to_contain_text("巡查 ·")
    expect(waiting).to_contain_text("400 米")
    expect(waiting).to_contain_text("等待网络")
    assert recorded_patrols(conn) == []
    assert fits_the_phone_width(page)
    page.set_viewport_size({"width": 360, "height": 1400})
    page.evaluate("window.scrollTo(0, 0)")
    screenshot("report-patrol-zh")

    page.context.set_offline(False)  # the `online` event sends it
    expect(page.locator("#queue-count")).to_have_text("0")
    expect(page.locator("#patrols li")).to_have_count(1)
    expect(page.locator("#patrols li").first).to_contain_text("测试镇1村1第1网格")
    [patrol] = recorded_patrols(conn)
    assert patrol["grid"] == OWN_GRID  # found from the track
    assert patrol["track"]["type"] == "LineString"
    assert patrol["track"]["coordinates"] == [
        [103.3105, 29.87],
        [103.3115, 29.87],
        [103.3125, 29.87],
        [103.3125, 29.871],
        [103.3135, 29.871],
    ]
    assert 395 < patrol["length_m"] < 405
    assert patrol["keys"] == 1  # sent with the phone's Idempotency-Key
    assert patrol["started_at"] < patrol["ended_at"]
    assert listed_patrol_ids(page, live_server) == [patrol["id"]]
    # Sent once: loading the page again sends nothing more.
    page.reload()
    expect(page.locator("#patrols li")).to_have_count(1)
    expect(page.locator("#queue-count")).to_have_text("0")
    assert len(recorded_patrols(conn)) == 1


def test_a_one_fix_patrol_is_a_check_in_recorded_once_although_its_first_answer_was_lost(
    patrolling_phone: Page, conn, live_server, browser_problems
):
    page = patrolling_phone
    page.click("[data-language=en]")
    expect(page.locator("#patrol-start")).to_have_text("Start patrol")
    answers_lost = []

    # The server records the patrol, but the phone never hears back (the signal drops mid-answer).
    def lose_the_answer(route: Route) -> None:
        if route.request.method == "POST" and not answers_lost:
            answers_lost.append(route.fetch().status)
            route.abort("connectionreset")
        else:
            route.fallback()

    page.route("**/api/v1/patrols", lose_the_answer)
    page.click("#patrol-start")
    expect(page.locator("#patrol-status")).to_have_text("Patrolling: keep this page open")
    expect(page.locator("#patrol-stats")).to_contain_text("0 m · GPS points: 1")
    page.click("#patrol-end")
    expect(page.locator("#patrol-message")).to_have_text("Patrol saved: it is sent when the phone is online")
    assert answers_lost == [201]
    expect(page.locator("#queue li.patrol")).to_contain_text("Patrol ·")
    provoked = browser_problems.console_errors  # the dropped answer, provoked on purpose
    assert provoked and all("ERR_CONNECTION_RESET" in error for error in provoked)
    browser_problems.clear()

    # Loading the page again retries the outbox: the same key gets the first patrol back.
    page.reload()
    expect(page.locator("#queue-count")).to_have_text("0")
    expect(page.locator("#patrols li").first).to_contain_text("0 m · 0 min")
    [patrol] = recorded_patrols(conn)
    assert patrol["track"] == {"type": "Point", "coordinates": [103.3105, 29.87]}
    assert patrol["grid"] == OWN_GRID
    assert patrol["keys"] == 1
    assert listed_patrol_ids(page, live_server) == [patrol["id"]]
