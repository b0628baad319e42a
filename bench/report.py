"""Leader report benchmark: the seconds `make_report` takes (figures, maps, render) and the
file's size, on a database of 1,000,000 incidents.

    .venv/bin/python bench/report.py --database-url postgresql://.../gridwatch_bench_cold \\
        --rounds 3 --out bench/results/report.json

Each round opens a new connection and a fresh hotspot cache (as a new `gridwatch report`
process does) and makes the county's report of last calendar month; then the same number of
whole `gridwatch report` processes (Python's start and imports included) are timed. Goal
(issue 13): ≤ 10 s with 1,000,000 incidents; the demo county's file ≤ 5 MiB (`gridwatch report`,
in docs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from feed import code_version  # noqa: E402
from procstats import load_average  # noqa: E402

from server import clock  # noqa: E402
from server.leader_report.service import make_report  # noqa: E402
from server.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {"command": " ".join(sys.argv), "code": code_version(), "load_average_start": load_average()}
    with psycopg.connect(args.database_url) as conn:
        result["incidents"] = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    rounds = []
    for _ in range(args.rounds):
        steps, started = {}, time.perf_counter()

        def step(name: str, steps=steps, started=started) -> None:
            steps[name] = round(time.perf_counter() - started, 2)

        settings = Settings(database_url=args.database_url, secret_key="bench")
        with psycopg.connect(args.database_url, row_factory=dict_row) as conn:
            html, name = make_report(
                conn, start=None, end=None, area=None, lang="zh", made_by="bench",
                settings=settings, now=clock.now(), step=step,
            )  # fmt: skip
        rounds.append(
            {
                "seconds": round(time.perf_counter() - started, 2),
                "bytes": len(html.encode()),
                "steps_at": steps,
            }
        )
        print(
            f"{name}: {rounds[-1]['seconds']} s, {rounds[-1]['bytes'] / 2**20:.2f} MiB, steps {steps}",
            flush=True,
        )
    result["rounds"] = rounds
    result["median_seconds"] = statistics.median(r["seconds"] for r in rounds)
    result["process_seconds"] = [command_seconds(args.database_url) for _ in range(args.rounds)]
    result["process_median_seconds"] = statistics.median(result["process_seconds"])
    result["load_average_end"] = load_average()
    print(
        f"median {result['median_seconds']} s over {len(rounds)} rounds ({result['incidents']:,} incidents);"
        f" whole processes {result['process_seconds']} s"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


def command_seconds(url: str) -> float:
    """A whole `gridwatch report` process, from its start to its exit."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).with_name("gridwatch")), "report", "--out", f"{folder}/report.html"],
            env={**os.environ, "GRIDWATCH_DATABASE_URL": url},
            check=True,
            capture_output=True,
        )
        return round(time.perf_counter() - started, 2)


if __name__ == "__main__":
    main()
