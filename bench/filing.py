"""Filing benchmark: POST /api/v1/incidents over HTTP to gunicorn (the production server of
`gridwatch serve`), with 1,000,000 incidents already stored. Every request does the full path:
Bearer token check, grid assignment by grid_at(), the incident row, its 'report' event, the
Idempotency-Key row, the possible-duplicate search, the tile rollup queue, and the folds of that
queue the server runs every 250 ms (sql/functions/tiles_changes.sql) while the requests arrive.

    .venv/bin/python bench/filing.py --database-url postgresql://.../gridwatch_bench_filing \\
        --incidents 1000000 --requests 3000 --concurrency 16 --out bench/results/filing.json

Data: the synthetic county and incident generator of bench/tiles.py (reused, so both benches
measure the same database shape). The database is dropped and rebuilt first (`--reuse` keeps
it): every filing stays an open, recent incident, so a rerun on the same database finds more
possible duplicates near each point and measures a busier county each time. A CHECKPOINT after
the build keeps the one its WAL is due for out of the measurement. Points are drawn inside
random grids; each request carries a fresh Idempotency-Key, as the phone page sends. The load
generator runs on the same machine, so it takes CPU from the server: the rate is a lower bound
for a separate client.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tiles import ensure_database, grow  # noqa: E402

from server.auth.users import issue_token  # noqa: E402

CATEGORIES = ["safety_hazard", "sanitation", "dispute", "public_facility", "resident_service"]


def drop_database(url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(psycopg.conninfo.make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def operator_token(url: str) -> str:
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        user_id = conn.execute(
            "INSERT INTO users (username, display_name, role)"
            " VALUES ('bench_operator', '基准调度', 'operator')"
            " ON CONFLICT (username) DO UPDATE SET role = 'operator' RETURNING id"
        ).fetchone()["id"]
        return issue_token(conn, user_id=user_id, label="bench")


def sample_points(url: str, count: int) -> list[tuple[float, float]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(
            """SELECT ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat
                 FROM (SELECT (ST_Dump(ST_GeneratePoints(g.geom, 1, 7))).geom
                         FROM grids g WHERE g.level = 'grid' ORDER BY random() LIMIT %s) AS p""",
            [count],
        ).fetchall()
    return [(row["lon"], row["lat"]) for row in rows]


def start_gunicorn(url: str, *, port: int, workers: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "GRIDWATCH_DATABASE_URL": url, "GRIDWATCH_SECRET_KEY": "bench"}
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "server.app:create_app()",
            "--config",
            "python:server.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("gunicorn did not answer /health within 60 s")


def fire(
    port: int, token: str, points: list, total: int, concurrency: int
) -> tuple[list[float], dict, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(total))

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in counter:
            lon, lat = rng.choice(points)
            body = json.dumps(
                {"lon": lon, "lat": lat, "category": rng.choice(CATEGORIES), "description": "基准"}
            )
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": str(uuid.uuid4()),
            }
            started = time.perf_counter()
            connection.request("POST", "/api/v1/incidents", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[response.status] = statuses.get(response.status, 0) + 1
        connection.close()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="the bench database (created when missing)")
    parser.add_argument("--incidents", type=int, default=1_000_000, help="incidents stored before filing")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker")
    parser.add_argument("--port", type=int, default=18431)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--reuse", action="store_true", help="file into the database as it is, not a rebuilt one"
    )
    args = parser.parse_args()

    if not args.reuse:
        drop_database(args.database_url)
    ensure_database(args.database_url)
    grow(args.database_url, target=args.incidents, chunk=250_000)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    token = operator_token(args.database_url)
    points = sample_points(args.database_url, 2000)
    server = start_gunicorn(args.database_url, port=args.port, workers=args.workers, threads=args.threads)
    try:
        fire(args.port, token, points, 200, args.concurrency)  # warm up pools and caches
        latencies, statuses, seconds = fire(args.port, token, points, args.requests, args.concurrency)
        time.sleep(1.0)  # the server folds the rollup queue every 250 ms: it must have kept up
        with psycopg.connect(args.database_url) as conn:
            queued_after = conn.execute("SELECT count(*) FROM tiles.pending_changes").fetchone()[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
    ordered = sorted(latencies)
    with psycopg.connect(args.database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    result = {
        "incidents_stored_after": stored,
        "requests": len(latencies),
        "statuses": statuses,
        "concurrency": args.concurrency,
        "gunicorn": f"{args.workers} workers x {args.threads} threads (gthread)",
        "seconds": round(seconds, 2),
        "rate_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
        "rollup_queue_1s_after": queued_after,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
