"""The README's dashboard pictures, taken from the demo county (``gridwatch demo load``: 2,184
grids, 60,000 incidents) as ``gridwatch serve`` shows it to the demo operator in Debian's headless
Chromium:

- ``docs/screenshots/dashboard-map-zh.png`` and ``dashboard-map-en.png``: the live map of the county;
- ``docs/screenshots/dashboard-incident-card.png``: the card of an open case, zoomed in on it;
- ``docs/screenshots/dashboard-heatmap-zh.png``: the heatmap (H3 hexagons) of the county;
- as the demo leader: ``leader-home-zh.png`` (the county at a glance), ``leader-response-zh.png``
  and ``leader-response-en.png`` (response analytics), ``leader-coverage-zh.png`` (coverage),
  ``leader-grid-zh.png`` (one grid's page), ``leader-hotspots-zh.png`` and
  ``leader-hotspots-h3-en.png`` (hotspots on grids, and on H3 cells in English).

The demo lives in its own database (``gridwatch_screenshots`` in the local cluster of
``gridwatch db up``, loaded once), never in the one ``make run`` serves.

    .venv/bin/python scripts/screenshots.py [--database-url postgresql://.../gridwatch_screenshots]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from playwright.sync_api import Page, sync_playwright
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the browser conftest imports its helpers as pytest does

from server.auth.users import set_password  # noqa: E402
from server.settings import Settings  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.server_support import running_server  # noqa: E402

OPERATOR = "demo_operator"
LEADER = "demo_leader"
HOTSPOT_MAP = "#hotspots-map .leaflet-overlay-pane canvas"
# The leaders' pages and what is drawn last on each.
LEADER_PAGES = (
    ("leader-home-zh", "/dashboard/?lang=zh", "#home-trend .main-svg"),
    ("leader-response-zh", "/dashboard/analytics/response?lang=zh", "#response-trend .main-svg"),
    ("leader-response-en", "/dashboard/analytics/response?lang=en", "#response-trend .main-svg"),
    (
        "leader-coverage-zh",
        "/dashboard/analytics/coverage?lang=zh",
        "#coverage-map .leaflet-overlay-pane canvas",
    ),
    ("leader-grid-zh", "/dashboard/grid/{grid}?lang=zh", "#grid-trend .main-svg"),
    ("leader-hotspots-zh", "/dashboard/analytics/hotspots?lang=zh", HOTSPOT_MAP),
    ("leader-hotspots-h3-en", "/dashboard/analytics/hotspots?lang=en&unit=h3", HOTSPOT_MAP),
)
PASSWORD = "screenshots-only"
VIEWPORT = {"width": 1280, "height": 800}
GRIDWATCH = str(ROOT / ".venv" / "bin" / "gridwatch")
MAP_DRAWN = """() => window.gridwatchLive && gridwatchLive.map && gridwatchLive.map.loaded()
    && gridwatchLive.map.areTilesLoaded()
    && !document.querySelector('#counter-open').textContent.includes('…')"""


def default_database_url() -> str:
    """A database of its own in the cluster gridwatch is configured for (the local one by default)."""
    return psycopg.conninfo.make_conninfo(Settings().resolved_owner_url(), dbname="gridwatch_screenshots")


def prepare(url: str) -> int:
    """Create, migrate and load the demo database when needed; give the demo operator a known
    password. Returns the incident whose card is shown: the open case closest to its due time."""
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    env = os.environ | {"GRIDWATCH_DATABASE_URL": url}
    subprocess.run([GRIDWATCH, "db", "migrate"], env=env, check=True)
    subprocess.run([GRIDWATCH, "demo", "load", "--if-empty"], env=env, check=True, stdout=subprocess.DEVNULL)
    with psycopg.connect(url) as conn:
        for username in (OPERATOR, LEADER):
            user_id = conn.execute("SELECT id FROM users WHERE username = %s", [username]).fetchone()[0]
            set_password(conn, user_id=user_id, password=PASSWORD)
        (incident_id,) = conn.execute(
            """SELECT id FROM incidents
                WHERE status NOT IN ('closed', 'rejected') AND due_at IS NOT NULL
                ORDER BY abs(extract(epoch FROM due_at - now())), id LIMIT 1"""
        ).fetchone()
    return incident_id


def open_map(page: Page, base: str, query: str) -> None:
    page.goto(f"{base}/dashboard/map{query}")
    page.wait_for_function(MAP_DRAWN, timeout=60_000)
    page.wait_for_timeout(500)  # the last frame on screen


def take(base: str, incident_id: int, out: Path) -> list[Path]:
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
        page = context.new_page()
        credentials = {"username": OPERATOR, "password": PASSWORD}
        login = page.request.post(f"{base}/api/v1/auth/login", data=credentials)
        if not login.ok:
            raise RuntimeError(f"login failed: {login.status} {login.text()}")
        for name, query in (
            ("dashboard-map-zh", "?lang=zh"),
            ("dashboard-map-en", "?lang=en"),
            ("dashboard-incident-card", f"?lang=zh&incident={incident_id}"),
        ):
            open_map(page, base, query)
            if "incident" in query:
                page.wait_for_selector("#card-title")
            path = out / f"{name}.png"
            page.screenshot(path=path)
            written.append(path)
        # The heatmap: H3 hexagons coloured by incident count.
        open_map(page, base, "?lang=zh")
        with page.expect_response(lambda response: "/tiles/incident_density/" in response.url):
            page.locator("#map-layers").get_by_text("热力图").click()
        page.wait_for_function("() => gridwatchLive.map.areTilesLoaded() && gridwatchLive.map.loaded()")
        page.wait_for_timeout(500)
        path = out / "dashboard-heatmap-zh.png"
        page.screenshot(path=path)
        written.append(path)
        written += take_leader_pages(browser, base, out)
        browser.close()
    return written


def take_leader_pages(browser, base: str, out: Path) -> list[Path]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    login = page.request.post(f"{base}/api/v1/auth/login", data={"username": LEADER, "password": PASSWORD})
    if not login.ok:
        raise RuntimeError(f"login failed: {login.status} {login.text()}")
    busiest = page.request.get(f"{base}/api/v1/analytics/response?by=grid").json()["rows"]
    grid = max(busiest, key=lambda row: row["received"])["code"]
    written = []
    for name, path, last in LEADER_PAGES:
        page.goto(base + path.format(grid=grid))
        page.wait_for_selector(last, state="attached", timeout=60_000)
        page.wait_for_timeout(800)  # the map's last frame
        target = out / f"{name}.png"
        page.screenshot(path=target, full_page=True)
        written.append(target)
    context.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="the demo database (created and loaded when missing)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    url = args.database_url or default_database_url()
    incident_id = prepare(url)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as var_dir:
        with running_server(
            lambda port: [GRIDWATCH, "serve", "--port", str(port)], database_url=url, var_dir=Path(var_dir)
        ) as base:
            for path in take(base, incident_id, args.out):
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
