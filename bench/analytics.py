"""Leaders' analytics benchmark: the indicator and coverage endpoints and the first render of each
leaders' page, on a county of 1,000,000 incidents.

1. start `gridwatch serve --only api` (gunicorn, 2 workers x 8 threads) on 127.0.0.1 against the
   benchmark database (bench/tiles.py's synthetic county, grown to --incidents when smaller);
2. API: GET each request of REQUESTS --rounds times in turn, one at a time, as a leader (Bearer
   token), last month as the period (a whole month of cases, as a bulletin reads); the first
   round after the start is reported apart (cold);
3. pages: in headless Chromium (Debian's), logged in as the leader, open each page of PAGES
   --rounds times; a render is the time from navigation to the page's last element drawn (the
   map's shapes, the bulletin, the figures table: what the user waits for).

    .venv/bin/python bench/analytics.py --database-url postgresql://.../gridwatch_bench_cold \\
        --incidents 1000000 --rounds 7 --out bench/results/analytics.json

Goals (issue 11): `/analytics/response?by=township` <= 300 ms, `by=grid` (2,184 rows) <= 1 s,
coverage <= 500 ms, each page's first render <= 2 s; medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feed import code_version  # noqa: E402
from procstats import load_average, start_api, stop  # noqa: E402
from tiles import command_line, ensure_database, grow  # noqa: E402

from server.auth.users import issue_token, set_password  # noqa: E402

REQUESTS = {
    "response by township": "/api/v1/analytics/response?by=township",
    "response by village": "/api/v1/analytics/response?by=village",
    "response by grid": "/api/v1/analytics/response?by=grid",
    "response by department": "/api/v1/analytics/response?by=department",
    "response by township, compare previous": "/api/v1/analytics/response?by=township&compare=previous",
    "response by township, xlsx": "/api/v1/analytics/response?by=township&format=xlsx",
    "coverage (grids, 7 days)": "/api/v1/analytics/coverage",
    "coverage (townships, 30 days)": "/api/v1/analytics/coverage?level=township&days=30",
}
# Each page and the selector that is drawn last.
PAGES = {
    "overview": ("/dashboard/", "#home-trend .main-svg"),
    "response": ("/dashboard/analytics/response", "#response-map path.leaflet-interactive"),
    "coverage": ("/dashboard/analytics/coverage", "#coverage-total-ok"),
    "coverage, map drawn": ("/dashboard/analytics/coverage", "#coverage-map .leaflet-overlay-pane canvas"),
    "grid": ("/dashboard/grid/{grid}", "#grid-figures-table"),
    "hotspots": ("/dashboard/analytics/hotspots", "#hotspots-table .ag-row"),
    "hotspots, map drawn": ("/dashboard/analytics/hotspots", "#hotspots-map .leaflet-overlay-pane canvas"),
    "hotspots, H3 resolution 8, map drawn": (
        "/dashboard/analytics/hotspots?unit=h3",
        "#hotspots-map .leaflet-overlay-pane canvas",
    ),
}
# Maps whose smoothness is measured once drawn: the longest task in the browser's main thread
# while the map zooms in one step and is dragged (a frame that long is a visible stall).
SMOOTHNESS = ("coverage, map drawn", "hotspots, map drawn", "hotspots, H3 resolution 8, map drawn")
LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
}).observe({entryTypes: ["longtask"]});
"""
PASSWORD = "bench leader password"
CHINA = ZoneInfo("Asia/Shanghai")
GOALS_MS = {
    "response by township": 300,
    "response by grid": 1000,
    "coverage (grids, 7 days)": 500,
    **{f"page {name}": 2000 for name in PAGES},
}


def leader(url: str) -> tuple[str, str]:
    """A leader's token and a grid code to open (the busiest grid)."""
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        user_id = conn.execute(
            "INSERT INTO users (username, display_name, role) VALUES ('bench_leader', '基准领导', 'leader')"
            " ON CONFLICT (username) DO UPDATE SET role = 'leader', active = true RETURNING id"
        ).fetchone()["id"]
        set_password(conn, user_id=user_id, password=PASSWORD)
        grid = conn.execute(
            """SELECT g.code FROM grids g JOIN incidents i ON i.grid_id = g.id
                WHERE g.level = 'grid' GROUP BY g.code ORDER BY count(*) DESC LIMIT 1"""
        ).fetchone()["code"]
        return issue_token(conn, user_id=user_id, label="bench"), grid


def timed_get(port: int, path: str, token: str) -> tuple[float, int]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        assert response.status == 200
    return (time.perf_counter() - started) * 1000, len(body)


def last_month() -> str:
    this_month = datetime.now(CHINA).date().replace(day=1)
    previous = (this_month - timedelta(days=1)).replace(day=1)
    return f"from={previous.isoformat()}&to={this_month.isoformat()}"


def bench_api(port: int, token: str, rounds: int) -> dict:
    results = {name: {"ms": [], "bytes": None} for name in REQUESTS}
    period = last_month()
    for _ in range(rounds):
        for name, path in REQUESTS.items():
            if path.startswith("/api/v1/analytics/response"):
                path = f"{path}&{period}"
            ms, size = timed_get(port, path, token)
            results[name]["ms"].append(round(ms, 1))
            results[name]["bytes"] = size
    for figures in results.values():
        figures["first_ms"] = figures["ms"][0]
        figures["median_ms"] = round(statistics.median(figures["ms"][1:] or figures["ms"]), 1)
    return results


def bench_pages(port: int, grid: str, rounds: int) -> dict:
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{port}"
    results = {name: [] for name in PAGES}
    stalls = {name: [] for name in SMOOTHNESS}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.add_init_script(LONG_TASKS)
        page = context.new_page()
        login = page.request.post(
            f"{base}/api/v1/auth/login", data={"username": "bench_leader", "password": PASSWORD}
        )
        assert login.ok, login.text()
        for _ in range(rounds):
            for name, (path, last) in PAGES.items():
                started = time.perf_counter()
                page.goto(base + path.format(grid=grid))
                page.wait_for_selector(last, state="attached", timeout=60_000)
                results[name].append(round((time.perf_counter() - started) * 1000, 1))
                if name in SMOOTHNESS:
                    stalls[name].append(longest_task_while_moving(page, last.split()[0]))
        browser.close()
    timings = {
        name: {"ms": times, "first_ms": times[0], "median_ms": round(statistics.median(times), 1)}
        for name, times in results.items()
    }
    for name, longest in stalls.items():
        timings[name]["longest_task_while_moving_ms"] = longest
        timings[name]["longest_task_median_ms"] = round(statistics.median(longest), 1)
    return timings


def longest_task_while_moving(page, map_selector: str) -> float:
    """The longest main-thread task while the map zooms in one step and is dragged 200 px."""
    page.wait_for_timeout(1000)  # the first draw's tasks end
    page.evaluate("window.__longTasks = []")
    page.click(f"{map_selector} .leaflet-control-zoom-in")
    page.wait_for_timeout(800)
    box = page.locator(map_selector).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 200, y - 100, steps=10)
    page.mouse.up()
    page.wait_for_timeout(800)
    return round(max(page.evaluate("window.__longTasks"), default=0.0), 1)


def markdown(result: dict) -> str:
    lines = ["| measured | median ms | first ms | goal ms |", "| --- | ---: | ---: | ---: |"]
    for name, figures in result["api"].items():
        goal = GOALS_MS.get(name, "")
        lines.append(f"| `{REQUESTS[name]}` | {figures['median_ms']} | {figures['first_ms']} | {goal} |")
    for name, figures in result["pages"].items():
        goal = GOALS_MS.get(f"page {name}", "")
        lines.append(f"| page: {name} | {figures['median_ms']} | {figures['first_ms']} | {goal} |")
        if "longest_task_median_ms" in figures:
            first_stall = figures["longest_task_while_moving_ms"][0]
            lines.append(
                f"| page: {name}, longest task while zooming and dragging | "
                f"{figures['longest_task_median_ms']} | {first_stall} | |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--port", type=int, default=18431)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    ensure_database(args.database_url)
    grow(args.database_url, target=args.incidents, chunk=200_000)
    token, grid = leader(args.database_url)
    with psycopg.connect(args.database_url) as conn:
        incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
        grids = conn.execute("SELECT count(*) FROM grids WHERE level = 'grid'").fetchone()[0]
    result = {
        "command": command_line(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_start": load_average(),
        "code": code_version(),
        "incidents": incidents,
        "grids": grids,
    }
    with tempfile.TemporaryFile() as log:
        server, startup_s = start_api(args.database_url, port=args.port, workers=2, env={}, log=log)
        try:
            result["startup_s"] = round(startup_s, 2)
            result["api"] = bench_api(args.port, token, args.rounds)
            result["pages"] = bench_pages(args.port, grid, args.rounds)
        finally:
            stop(server)
    result["load_average_end"] = load_average()
    print(markdown(result))
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
