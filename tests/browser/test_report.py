"""The inspector's phone page ``/report`` in Chromium at phone width: log in, file a report with a
photo, file two more without a connection, and see exactly those two arrive once it returns."""

from __future__ import annotations

import io
import json
import os
import time
import urllib.request

import pytest
from PIL import Image
from playwright.sync_api import Page, Route, expect
from report_support import PHONE, POSITION, fits_the_phone_width, log_in_on_the_phone
from workflow_helpers import OWN_POINT, people

from server.incidents import service
from server.tiles.changes import fold_pending

pytestmark = pytest.mark.browser

# In 511423001002001, inspector2's grid just north of it.
NEXT_GRID = {"longitude": 103.31, "latitude": 29.91, "accuracy": 12}


def camera_photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 60)).save(buffer, format="JPEG")
    return buffer.getvalue()


def oversized_camera_photo() -> bytes:
    """3200 x 2400 of noise: about 9 MB as JPEG, over the server's 8 MiB."""
    width, height = 3200, 2400
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(
        buffer, format="JPEG", quality=95
    )
    assert buffer.tell() > 8 * 1024 * 1024
    return buffer.getvalue()


def reports_by(conn, description: str) -> list[dict]:
    conn.commit()  # a fresh snapshot: the server wrote on its own connections
    return conn.execute(
        """SELECT i.id, g.code AS grid, u.username, i.accuracy_m, i.category_code, i.observed_at,
                  i.reported_at, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
                  (SELECT count(*) FROM incident_photos p WHERE p.incident_id = i.id) AS photos,
                  (SELECT max(p.width) FROM incident_photos p WHERE p.incident_id = i.id) AS photo_width,
                  (SELECT count(*) FROM idempotency_keys k WHERE k.incident_id = i.id) AS keys
             FROM incidents i JOIN grids g ON g.id = i.grid_id JOIN users u ON u.id = i.reporter_id
            WHERE i.description = %s""",
        [description],
    ).fetchall()


def incident_count(conn) -> int:
    conn.commit()
    return conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"]


@pytest.fixture
def inspector_phone(live_server, page: Page, conn) -> Page:
    """The page at 360 px, with the phone's position inside inspector1's grid, logged in."""
    log_in_on_the_phone(page, live_server, conn)
    expect(page.locator("#position-text")).to_contain_text("29.898500, 103.310500 · 精度 ±12 米")
    return page


def file_report(page: Page, description: str, *, photo: bytes | None = None) -> None:
    page.select_option("#category", "sanitation")
    page.fill("textarea[name=description]", description)
    if photo is not None:
        page.set_input_files(
            "input[name=photos]", files=[{"name": "camera.jpg", "mimeType": "image/jpeg", "buffer": photo}]
        )
    page.click("#submit")


def test_report_online_then_two_offline_reports_arrive_once(inspector_phone: Page, conn, screenshot):
    page = inspector_phone
    before = incident_count(conn)

    file_report(page, "路边垃圾堆放", photo=camera_photo())
    expect(page.locator("#form-message")).to_contain_text("已上报（编号")
    [filed] = reports_by(conn, "路边垃圾堆放")
    assert filed["grid"] == "511423001001001"
    assert filed["username"] == "inspector1"
    assert filed["category_code"] == "sanitation"
    assert (round(filed["lon"], 4), round(filed["lat"], 4)) == (103.3105, 29.8985)
    assert filed["accuracy_m"] == 12
    assert filed["photos"] == 1
    assert filed["keys"] == 1  # sent with the phone's Idempotency-Key
    expect(page.locator("#recent li").first).to_contain_text(f"#{filed['id']}")
    expect(page.locator("#recent li").first).to_contain_text("已上报")
    assert fits_the_phone_width(page)

    # The service worker holds the shell: without a connection the page still opens.
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    page.context.set_offline(True)
    page.reload()
    expect(page.locator("#connection")).to_be_visible()
    expect(page.locator("#who")).to_have_text("张网格")
    expect(page.locator("#position-text")).to_contain_text("精度 ±12 米")

    # Meanwhile the center files a hotline case in the same grid: not the inspector's own report.
    hotline = service.Filing(
        lon=OWN_POINT[0], lat=OWN_POINT[1], category="public_facility", channel="hotline_12345"
    )
    by_operator = service.file_incident(
        conn, user=people(conn)["operator1"], filing=hotline, now=filed["reported_at"]
    ).incident["id"]
    conn.commit()

    file_report(page, "离线上报一：井盖缺失")
    expect(page.locator("#form-message")).to_have_text("已保存，联网后自动发送")
    # A photo over the server's limit is scaled down on the phone rather than refused.
    file_report(page, "离线上报二：路灯不亮", photo=oversized_camera_photo())
    expect(page.locator("#queue-count")).to_have_text("2")
    expect(page.locator("#queue li")).to_have_count(2)
    assert incident_count(conn) == before + 2  # the online report and the hotline case
    page.set_viewport_size({"width": 360, "height": 1400})  # the whole page, queue included
    page.evaluate("window.scrollTo(0, 0)")
    screenshot("report-zh")

    page.context.set_offline(False)  # the `online` event sends the queue
    expect(page.locator("#queue-count")).to_have_text("0")
    expect(page.locator("#connection")).to_be_hidden()
    first, second = reports_by(conn, "离线上报一：井盖缺失"), reports_by(conn, "离线上报二：路灯不亮")
    assert len(first) == 1 and len(second) == 1
    assert (second[0]["photos"], second[0]["photo_width"]) == (1, 2560)
    assert first[0]["keys"] == 1 and second[0]["keys"] == 1
    # Each keeps when it was made on the phone, before it arrived.
    assert first[0]["observed_at"] < first[0]["reported_at"]
    assert first[0]["observed_at"] < second[0]["observed_at"] < second[0]["reported_at"]
    assert incident_count(conn) == before + 4
    expect(page.locator("#recent li").first).to_contain_text(f"#{second[0]['id']}")
    expect(page.locator("#recent")).not_to_contain_text(f"#{by_operator} ")  # only the inspector's own


def test_my_reports_show_the_centres_decision_without_a_reload(inspector_phone: Page, conn, live_server):
    page = inspector_phone
    file_report(page, "井盖缺失")
    expect(page.locator("#form-message")).to_contain_text("已上报（编号")
    [filed] = reports_by(conn, "井盖缺失")
    expect(page.locator("#recent li").first).to_contain_text("已上报")
    feed = f"http://127.0.0.1:{live_server.app.extensions['gridwatch.settings'].events_port}/health"
    wait_until(lambda: json.loads(urllib.request.urlopen(feed, timeout=5).read())["streams"] == 1)

    conn.execute("UPDATE incidents SET status = 'accepted', accepted_at = now() WHERE id = %s", [filed["id"]])
    conn.commit()
    fold_pending(conn)  # as the server's tile listener does every 250 ms
    conn.commit()
    expect(page.locator("#recent li").first).to_contain_text("已立案")


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_report_whose_answer_was_lost_is_resent_with_its_key_and_filed_once(
    inspector_phone: Page, conn, browser_problems
):
    page = inspector_phone
    before = incident_count(conn)
    answers_lost = []

    # The server files the report, but the phone never hears back (the signal drops mid-answer).
    def lose_the_answer(route: Route) -> None:
        if route.request.method == "POST" and not answers_lost:
            answers_lost.append(route.fetch().status)
            route.abort("connectionreset")
        else:
            route.fallback()

    page.route("**/api/v1/incidents", lose_the_answer)
    file_report(page, "应答丢失的上报")
    expect(page.locator("#form-message")).to_have_text("已保存，联网后自动发送")
    assert answers_lost == [201]
    assert len(reports_by(conn, "应答丢失的上报")) == 1
    expect(page.locator("#queue-count")).to_have_text("1")
    provoked = browser_problems.console_errors  # the dropped answer, provoked on purpose
    assert provoked and all("ERR_CONNECTION_RESET" in error for error in provoked)
    browser_problems.clear()

    # Loading the page again retries the queue: the same key gets the first incident back.
    page.reload()
    expect(page.locator("#queue-count")).to_have_text("0")
    [filed] = reports_by(conn, "应答丢失的上报")
    assert filed["keys"] == 1
    assert incident_count(conn) == before + 1
    expect(page.locator("#recent li").first).to_contain_text(f"#{filed['id']}")


RENDERED_NAMES = "gridwatchReportMap.queryRenderedFeatures({layers: [layer]}).map((f) => f.properties.name)"


def map_labels(page: Page, layer: str) -> set[str]:
    """The names MapLibre has placed on the screen in one label layer."""
    return set(page.evaluate(f"(layer) => {RENDERED_NAMES}", layer))


def wait_for_labels(page: Page, layer: str, names: set[str]) -> None:
    page.wait_for_function(
        f"""([layer, names]) => {{
            const shown = {RENDERED_NAMES};
            return names.every((name) => shown.includes(name));
        }}""",
        arg=[layer, sorted(names)],
    )


def jump(page: Page, lon: float, lat: float, zoom: float) -> None:
    page.evaluate(
        "([lon, lat, zoom]) => gridwatchReportMap.jumpTo({center: [lon, lat], zoom: zoom})", [lon, lat, zoom]
    )


def test_the_map_names_places_and_the_inspectors_own_grids_without_a_basemap(
    inspector_phone: Page, screenshot
):
    page = inspector_phone
    page.wait_for_function("() => window.gridwatchReportMap && gridwatchReportMap.loaded()")
    # Near the north edge of the own grid: its name, and the next grid's (inspector2's) over the line.
    wait_for_labels(page, "own-labels", {"测试镇1村1第1网格"})
    wait_for_labels(page, "place-labels", {"测试镇1村2第1网格"})
    screenshot("report-map-zh")
    # Where four grids meet: the two own ones in their own layer, the other two as place names.
    jump(page, 103.325, 29.90, 13.2)
    wait_for_labels(page, "own-labels", {"测试镇1村1第1网格", "测试镇1村1第2网格"})
    wait_for_labels(page, "place-labels", {"测试镇1村2第1网格", "测试镇1村2第2网格"})
    assert map_labels(page, "place-labels") == {"测试镇1村2第1网格", "测试镇1村2第2网格"}
    # Zoomed out the names are those of villages, then townships, as on the live map.
    jump(page, 103.325, 29.90, 11.5)
    wait_for_labels(page, "place-labels", {"测试镇1村1", "测试镇1村2"})
    jump(page, 103.35, 29.90, 9.5)
    page.wait_for_function(f"(layer) => {RENDERED_NAMES}.length > 0", arg="place-labels")
    assert map_labels(page, "place-labels") <= {"测试镇1", "测试镇2"}
    assert map_labels(page, "own-labels") == set()  # too small to name this far out
    page.click("[data-language=en]")
    jump(page, 103.325, 29.90, 13.2)
    wait_for_labels(page, "own-labels", {"Town 1 Village 1 Grid 1", "Town 1 Village 1 Grid 2"})
    wait_for_labels(page, "place-labels", {"Town 1 Village 2 Grid 1"})


def test_report_page_switches_to_english_and_keeps_it_in_the_url(inspector_phone: Page, screenshot):
    page = inspector_phone
    page.click("[data-language=en]")
    expect(page.locator("h1")).to_have_text("Report an incident")
    expect(page.locator("#position-text")).to_contain_text("accuracy ±12 m")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert page.url.endswith("/report?lang=en")
    page.reload()
    expect(page.locator("#submit")).to_have_text("Report")
    expect(page.locator("#recent li").first).to_contain_text("Reported")
    assert fits_the_phone_width(page)
    screenshot("report-en")


def test_poor_accuracy_is_warned_and_a_point_moved_on_the_map_is_sent_without_it(inspector_phone: Page, conn):
    page = inspector_phone
    page.context.set_geolocation({**POSITION, "accuracy": 180})
    expect(page.locator("#accuracy-warning")).to_contain_text("超过 50 米")
    page.wait_for_function("document.querySelector('#map canvas') !== null")
    # A tap on the map moves the point (the marker follows) and drops the GPS accuracy.
    page.locator("#map canvas").click(position={"x": 60, "y": 180})
    expect(page.locator("#position-text")).to_contain_text("已手动调整位置")
    expect(page.locator("#accuracy-warning")).to_be_hidden()
    file_report(page, "手动定位的上报")
    expect(page.locator("#form-message")).to_contain_text("已上报")
    [filed] = reports_by(conn, "手动定位的上报")
    assert filed["accuracy_m"] is None
    assert (round(filed["lon"], 4), round(filed["lat"], 4)) != (103.3105, 29.8985)


def test_a_point_outside_my_grids_is_warned_before_sending_and_a_refused_report_is_corrected(
    inspector_phone: Page, conn, browser_problems, screenshot
):
    page = inspector_phone
    before = incident_count(conn)
    expect(page.locator("#grid-warning")).to_be_hidden()
    # Standing in the next grid north, inspector2's: inside the county, not in inspector1's grids.
    page.context.set_geolocation(NEXT_GRID)
    warning = page.locator("#grid-warning")
    expect(warning).to_contain_text("该位置不在您负责的网格（测试镇1村1第1网格、测试镇1村1第2网格）内")
    file_report(page, "邻近网格的上报")
    # Warned before anything is sent: nothing queued, the button now asks to send anyway.
    expect(page.locator("#form-message")).to_contain_text("服务器会拒绝这份上报")
    expect(page.locator("#submit")).to_have_text("仍要上报")
    expect(page.locator("#queue-count")).to_have_text("0")
    # The GPS moving a little meanwhile does not ask again.
    page.context.set_geolocation({**NEXT_GRID, "latitude": 29.9101})
    expect(page.locator("#position-text")).to_contain_text("29.910100")
    expect(page.locator("#submit")).to_have_text("仍要上报")
    page.click("#submit")
    expect(page.locator("#form-message")).to_contain_text("只能上报本网格的事件")
    expect(page.locator("#form-message")).to_contain_text("表单已保留")
    # The form keeps the report, and the outbox lists it with a way to correct it.
    expect(page.locator("#editing")).to_be_visible()
    expect(page.locator("#category")).to_have_value("sanitation")
    expect(page.locator("textarea[name=description]")).to_have_value("邻近网格的上报")
    expect(page.locator("#submit")).to_have_text("重新上报")
    refused = page.locator("#queue li.refused")
    expect(refused).to_contain_text("被拒绝")
    expect(refused.locator("button")).to_have_text(["修改", "删除"])
    provoked = browser_problems.console_errors  # Chromium logs the 403, provoked on purpose
    assert provoked and all("status of 403" in error for error in provoked)
    browser_problems.clear()
    assert fits_the_phone_width(page)
    page.set_viewport_size({"width": 360, "height": 1400})
    page.evaluate("window.scrollTo(0, 0)")
    screenshot("report-refused-zh")
    page.set_viewport_size(PHONE)

    # A reload loses the form, not the report; refused is final, so it is not sent again.
    page.reload()
    expect(page.locator("#queue li.refused")).to_have_count(1)
    expect(page.locator("#editing")).to_be_hidden()
    assert incident_count(conn) == before
    page.locator("#queue li.refused button", has_text="修改").click()
    expect(page.locator("textarea[name=description]")).to_have_value("邻近网格的上报")
    expect(page.locator("#position-text")).to_contain_text("29.910100, 103.310000 · 上报时的位置")
    expect(warning).to_be_visible()
    # Corrected: back in the own grid by the GPS, then sent once.
    page.context.set_geolocation(POSITION)
    page.click("#use-gps")
    expect(warning).to_be_hidden()
    page.click("#submit")
    expect(page.locator("#form-message")).to_contain_text("已上报（编号")
    expect(page.locator("#queue-count")).to_have_text("0")
    expect(page.locator("#editing")).to_be_hidden()
    expect(page.locator("#submit")).to_have_text("上报")
    [filed] = reports_by(conn, "邻近网格的上报")
    assert filed["grid"] == "511423001001001"
    assert (round(filed["lon"], 4), round(filed["lat"], 4)) == (103.3105, 29.8985)
    assert filed["accuracy_m"] == 12
    assert filed["observed_at"] < filed["reported_at"]  # when it was first seen, before the refusal
    assert incident_count(conn) == before + 1


def test_outside_the_county_in_english_a_refused_report_is_listed_until_deleted(
    inspector_phone: Page, conn, browser_problems
):
    page = inspector_phone
    page.click("[data-language=en]")
    before = incident_count(conn)
    page.context.set_geolocation({**POSITION, "longitude": 103.20})  # west of the county
    expect(page.locator("#grid-warning")).to_contain_text(
        "This point is outside your grids (Town 1 Village 1 Grid 1, Town 1 Village 1 Grid 2)"
    )
    file_report(page, "outside the county")
    expect(page.locator("#submit")).to_have_text("Report anyway")
    page.click("#submit")
    expect(page.locator("#form-message")).to_contain_text("the point is outside the county's grids")
    expect(page.locator("#editing")).to_contain_text("Correcting a refused report")
    refused = page.locator("#queue li.refused")
    expect(refused).to_contain_text("refused")
    provoked = browser_problems.console_errors
    assert provoked and all("status of 422" in error for error in provoked)
    browser_problems.clear()
    # Deleting the report being corrected also empties the form.
    refused.locator("button", has_text="Delete").click()
    expect(page.locator("#queue-count")).to_have_text("0")
    expect(page.locator("#editing")).to_be_hidden()
    expect(page.locator("textarea[name=description]")).to_have_value("")
    expect(page.locator("#submit")).to_have_text("Report")
    assert incident_count(conn) == before
