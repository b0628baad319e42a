"""Hotspot benchmark: `GET /api/v1/analytics/hotspots` on a county of 1,000,000 incidents.

1. start `gridwatch serve --only api` (gunicorn, 2 workers x 8 threads) on 127.0.0.1 against the
   benchmark database (bench/tiles.py's synthetic county, grown to --incidents when smaller);
2. as a leader, one request at a time: a few township answers first (each worker imports esda,
   3 s, on its first hotspot request; reported apart), then, for each of the --rounds busiest
   categories, a year of it on the finest grids (Gi*, 999 permutations) and on H3 cells of
   resolution 8: different parameters each, so each is computed, not cached; then the first grid
   request again, --rounds times (a cached repeat; the cache is per worker, so the first repeats
   may reach the worker that has not computed it); then emerging hotspots of each category over
   the 24 complete months before this one, by month.

    .venv/bin/python bench/hotspots.py --database-url postgresql://.../gridwatch_bench_cold \\
        --incidents 1000000 --rounds 5 --out bench/results/hotspots.json

Goals (issue 12): unit=grid for one category and a year <= 1 s with 999 permutations,
unit=h3&resolution=8 <= 3 s, emerging hotspots over 24 months <= 5 s, a cached repeat <= 50 ms;
medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analytics import leader, timed_get  # noqa: E402
from feed import code_version  # noqa: E402
from procstats import load_average, start_api, stop  # noqa: E402
from tiles import command_line, ensure_database, grow  # noqa: E402

PATH = "/api/v1/analytics/hotspots"
GOALS_MS = {
    "grid, one category, a year": 1000,
    "h3 resolution 8, one category, a year": 3000,
    "cached repeat": 50,
    "emerging, grid, one category, 24 months": 5000,
}


def busiest_categories(url: str, count: int) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT category_code FROM incidents GROUP BY 1 ORDER BY count(*) DESC LIMIT %s", [count]
        ).fetchall()
    return [code for (code,) in rows]


def bench(port: int, token: str, categories: list[str], rounds: int) -> dict:
    def get(query: str) -> float:
        ms, _ = timed_get(port, f"{PATH}?{query}", token)
        return round(ms, 1)

    first = [get(f"unit=township&alpha=0.{5 + n:02d}") for n in range(4)]
    grid = [get(f"unit=grid&category={code}") for code in categories]
    h3 = [get(f"unit=h3&resolution=8&category={code}") for code in categories]
    repeat = [get(f"unit=grid&category={categories[0]}") for _ in range(rounds + 2)][2:]
    emerging = [
        round(
            timed_get(
                port, f"{PATH.replace('hotspots', 'emerging-hotspots')}?unit=grid&category={code}", token
            )[0],
            1,
        )
        for code in categories
    ]
    results = {
        "first requests (esda import)": first,
        "grid, one category, a year": grid,
        "h3 resolution 8, one category, a year": h3,
        "cached repeat": repeat,
        "emerging, grid, one category, 24 months": emerging,
    }
    return {name: {"ms": ms, "median_ms": round(statistics.median(ms), 1)} for name, ms in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--port", type=int, default=18432)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    ensure_database(args.database_url)
    grow(args.database_url, target=args.incidents, chunk=200_000)
    token, _ = leader(args.database_url)
    categories = busiest_categories(args.database_url, args.rounds)
    result = {
        "command": command_line(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_start": load_average(),
        "code": code_version(),
        "categories": categories,
    }
    with tempfile.TemporaryFile() as log:
        server, startup_s = start_api(args.database_url, port=args.port, workers=2, env={}, log=log)
        try:
            result["startup_s"] = round(startup_s, 2)
            result["requests"] = bench(args.port, token, categories, args.rounds)
        finally:
            stop(server)
    result["load_average_end"] = load_average()
    print("| request | median ms | each ms | goal ms |\n| --- | ---: | --- | ---: |")
    for name, figures in result["requests"].items():
        print(f"| {name} | {figures['median_ms']} | {figures['ms']} | {GOALS_MS.get(name, '')} |")
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
