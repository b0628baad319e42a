"""Demo-load benchmark: `gridwatch demo load --incidents N` into a fresh database, timed per step.

By default it starts its own cluster under var/bench/ with the same settings as `make run`'s
(durability on), creates a fresh migrated database for each size, loads, and records the total
and per-step seconds with the machine's load average (other processes share the cores):

    .venv/bin/python bench/load.py --incidents 1000000 --out bench/results/load.json

`--database-url` loads into an existing database instead (its data is replaced).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.db.cluster import Cluster  # noqa: E402
from server.db.migrate import migrate  # noqa: E402
from server.demo import load_demo  # noqa: E402

TARGET_SECONDS = 60  # issue 2: a million incidents in at most a minute


def fresh_database(cluster: Cluster, name: str) -> str:
    with psycopg.connect(cluster.url_for("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = cluster.url_for(name)
    migrate(url)
    return url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(url: str, incidents: int, seed: int) -> dict:
    load_before = os.getloadavg()[0]
    summary = load_demo(url, seed=seed, incident_count=incidents, progress=True)
    return {
        "incidents": incidents,
        "seconds": round(summary.seconds, 1),
        "within_target": summary.seconds <= TARGET_SECONDS,
        "steps": {name: round(seconds, 1) for name, seconds in summary.step_seconds.items()},
        "counts": summary.counts,
        "load_average_before": round(load_before, 1),
        "load_average_after": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, action="append", help="default: 1000000 (repeatable)")
    parser.add_argument("--seed", type=int, default=2184)
    parser.add_argument("--database-url", help="load into this database instead of a fresh one")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    sizes = args.incidents or [1_000_000]

    cluster = None
    if not args.database_url:
        cluster = Cluster(ROOT / "var" / "bench" / "load", free_port())
        cluster.up()
    results = []
    try:
        for size in sizes:
            url = args.database_url or fresh_database(cluster, f"gridwatch_bench_load_{size}")
            result = run(url, size, args.seed)
            results.append(result)
            steps = ", ".join(f"{name} {seconds} s" for name, seconds in result["steps"].items())
            verdict = "within" if result["within_target"] else "OVER"
            print(
                f"{size:>10,} incidents: {result['seconds']} s ({verdict} the {TARGET_SECONDS} s target; "
                f"load average {result['load_average_before']} → {result['load_average_after']} "
                f"on {os.cpu_count()} cores)\n  {steps}"
            )
    finally:
        if cluster is not None:
            cluster.destroy()
    if args.out:
        record = {
            "command": " ".join(["bench/load.py", *sys.argv[1:]]),
            "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cores": os.cpu_count(),
            "results": results,
        }
        args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
