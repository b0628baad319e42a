"""The dashboard renders in Chromium from local files only, in Chinese by default, with a CJK font."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_dashboard_renders_with_every_script_and_stylesheet_served_by_gridwatch(
    live_server, page, screenshot
):
    requested = []
    page.on("request", lambda request: requested.append(request))
    page.goto(f"{live_server.url}/dashboard/")

    expect(page.locator("#app-title")).to_have_text("网格化管理中心 · gridwatch")
    expect(page.locator("#kpi-grids strong")).to_have_text("8")
    expect(page.locator("#kpi-incidents strong")).to_have_text("8")

    kinds = {request.resource_type for request in requested}
    assert {"document", "script", "stylesheet"} <= kinds
    origins = {
        urlsplit(request.url)._replace(path="", query="", fragment="").geturl() for request in requested
    }
    assert origins == {live_server.url}
    screenshot("dashboard-home-zh")


def test_chinese_labels_are_drawn_with_a_cjk_font(live_server, page):
    page.goto(f"{live_server.url}/dashboard/")
    label = page.locator("#kpi-grids div")
    expect(label).to_have_text("网格数")

    # Ask Chromium which installed fonts drew the label's glyphs: a missing CJK font shows up as a
    # fallback (or .notdef "tofu") font instead, or as fewer glyphs than characters.
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#kpi-grids div"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]

    assert [(font["familyName"], font["glyphCount"]) for font in fonts] == [("WenQuanYi Micro Hei", 3)]


def test_language_switch_changes_the_labels(live_server, page):
    page.goto(f"{live_server.url}/dashboard/")
    expect(page.locator("#kpi-grids div")).to_have_text("网格数")
    expect(page.locator("#shell")).to_have_attribute("lang", "zh-CN")

    page.locator("#language-en").click()
    expect(page).to_have_url(re.compile(r"/dashboard/\?lang=en$"))
    expect(page.locator("#app-title")).to_have_text("Grid Management Center · gridwatch")
    expect(page.locator("#kpi-grids div")).to_have_text("Grids")
    expect(page.locator("main h2")).to_have_text("County overview")
    expect(page.locator("#shell")).to_have_attribute("lang", "en")

    page.locator("#language-zh").click()
    expect(page.locator("#app-title")).to_have_text("网格化管理中心 · gridwatch")
    expect(page.locator("#kpi-open div")).to_have_text("在办事件")


def test_a_link_with_the_language_opens_in_that_language(live_server, page):
    page.goto(f"{live_server.url}/dashboard/?lang=en")
    expect(page.locator("#kpi-incidents div")).to_have_text("Incidents")
    expect(page.locator("#app-title")).to_have_text("Grid Management Center · gridwatch")
