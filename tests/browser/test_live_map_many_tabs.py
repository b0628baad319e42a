"""A grid center's load in one browser: twenty tabs on the live map, and a filing reaches every
one of them within two seconds and is drawn there. The tabs share one stream (a SharedWorker):
a browser opens at most six HTTP/1.1 connections to a host, so with a stream per tab the
seventh tab would never hear of anything."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from test_dashboard_live import MAP_READY, drawn_incident, log_in

pytestmark = pytest.mark.browser

TABS = 20
LON, LAT = 103.31, 29.86
# Every tab looks at the spot the filing lands on, zoomed in far enough to draw single points.
VIEW = f"?view={LON:.5f},{LAT:.5f},15.00"
RECORD_ARRIVALS = """() => {
    window.arrivals = {};
    gridwatchLive.events.addEventListener("incident", (message) => {
        window.arrivals[JSON.parse(message.data).incident_id] = Date.now();
    });
}"""


def test_twenty_tabs_on_the_live_map_all_show_a_filing_within_two_seconds(live_server, page, database_url):
    csrf = log_in(page, live_server, database_url, "operator1")
    page.set_viewport_size({"width": 480, "height": 320})  # twenty maps drawn on the CPU
    tabs = [page] + [page.context.new_page() for _ in range(TABS - 1)]
    errors: list[str] = []
    for tab in tabs:
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.set_viewport_size({"width": 480, "height": 320})
        tab.goto(f"{live_server.url}/dashboard/map{VIEW}")
    for tab in tabs:
        tab.wait_for_function(MAP_READY, timeout=60_000)
        tab.wait_for_function("() => gridwatchLive.events && gridwatchLive.events.readyState === 1")
        tab.evaluate(RECORD_ARRIVALS)
    feed = live_server.app.extensions["gridwatch.settings"].events_port
    with urllib.request.urlopen(f"http://127.0.0.1:{feed}/health", timeout=5) as health:
        assert json.loads(health.read())["streams"] == 1

    response = page.request.post(
        f"{live_server.url}/api/v1/incidents",
        data={"lon": LON, "lat": LAT, "category": "straw_burning", "description": "田间焚烧秸秆"},
        headers={"X-CSRF-Token": csrf},
    )
    answered_ms = time.time() * 1000
    assert response.status == 201, response.text()
    new_id = response.json()["id"]

    delays = []
    for tab in tabs:
        tab.wait_for_function("(id) => window.arrivals[id] !== undefined", arg=new_id, timeout=10_000)
        delays.append(tab.evaluate("(id) => window.arrivals[id]", new_id) - answered_ms)
    assert max(delays) <= 2000, delays
    for tab in tabs:
        tab.wait_for_function(
            """(id) => gridwatchLive.map.querySourceFeatures("incidents", {sourceLayer: "incidents"})
                .some((feature) => feature.id === id)""",
            arg=new_id,
            timeout=10_000,
        )
        assert drawn_incident(tab, new_id)["category"] == "straw_burning"
    assert errors == []
