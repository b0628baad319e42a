"""Demo-load benchmark: `gridwatch demo load --incidents N` into a fresh database, timed per step.

By default it starts its own cluster under var/bench/ with the same settings as `make run`'s
(durability on), creates a fresh migrated database for each size, loads, and records the total
and per-step seconds with the machine's load average. On a machine whose cores other work
shares, wall time says little, so it also records the CPU time the load used: this process plus
every process of the bench cluster (the postmaster's reaped children included). Generation and
loading run one after the other, so on idle cores the wall time is about that CPU time.

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


def cluster_cpu_seconds(cluster: Cluster | None) -> float | None:
    """CPU seconds used so far by the cluster's postmaster and all its children, live or reaped."""
    if cluster is None:
        return None
    postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        pid, parent = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        elif parent == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def run(url: str, incidents: int, seed: int, cluster: Cluster | None) -> dict:
    load_before = os.getloadavg()[0]
    cpu_before = (own_cpu_seconds(), cluster_cpu_seconds(cluster))
    summary = load_demo(url, seed=seed, incident_count=incidents, progress=True)
    python_cpu = own_cpu_seconds() - cpu_before[0]
    database_cpu = None if cluster is None else cluster_cpu_seconds(cluster) - cpu_before[1]
    return {
        "incidents": incidents,
        "seconds": round(summary.seconds, 1),
        "cpu_seconds": {
            "python": round(python_cpu, 1),
            "database": None if database_cpu is None else round(database_cpu, 1),
        },
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
            result = run(url, size, args.seed, cluster)
            results.append(result)
            steps = ", ".join(f"{name} {seconds} s" for name, seconds in result["steps"].items())
            verdict = "within" if result["within_target"] else "OVER"
            print(
                f"{size:>10,} incidents: {result['seconds']} s ({verdict} the {TARGET_SECONDS} s target; "
                f"load average {result['load_average_before']} → {result['load_average_after']} "
                f"on {os.cpu_count()} cores); CPU: python {result['cpu_seconds']['python']} s, "
                f"database {result['cpu_seconds']['database']} s\n  {steps}"
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
