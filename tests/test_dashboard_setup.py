"""Dash's own scripts are served to requests that race a worker's first request (plotly/dash#3971:
under gunicorn's threads they got 500 "not a registered library" and the page stayed blank)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

SCRIPTS = (
    "/dashboard/_dash-component-suites/dash/deps/react@18.3.1.min.js",
    "/dashboard/_dash-component-suites/dash/deps/prop-types@15.8.1.min.js",
    "/dashboard/_dash-component-suites/dash/dash-renderer/build/dash_renderer.min.js",
)


def test_scripts_requested_together_with_the_first_page_are_all_served(app):
    paths = ["/dashboard/map", *SCRIPTS * 10]
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        statuses = list(pool.map(lambda path: app.test_client().get(path).status_code, paths))
    assert statuses == [200] * len(paths)


def test_the_bare_address_opens_the_dashboard_in_the_language_asked(app):
    client = app.test_client()
    assert client.get("/").headers["Location"] == "/dashboard/"
    assert client.get("/?lang=en").headers["Location"] == "/dashboard/?lang=en"
    assert client.get("/", follow_redirects=True).status_code == 200
