"""Cold-tile benchmark: tile latency per layer right after the API server (re)starts.

A restarted server has new worker processes: empty tile caches, and new database sessions that
have not yet run any layer's SQL (PL/Python and h3 not loaded, the tile functions' statements not
planned). server/tiles/warm.py builds a few tiles of every layer on each pooled connection before
the worker takes requests (GRIDWATCH_WARM_CONNECTIONS, default true; GRIDWATCH_POOL_MIN_SIZE
connections, default 4). This bench measures what the first map views after a restart cost,
with and without that warming:

for each round (--rounds) and each mode (--mode; the modes' order rotates from round to round):

1. start `gridwatch serve --only api` (gunicorn, 2 workers x 8 threads, as it runs in production)
   on 127.0.0.1 and wait for a 200 from /health (polled every 0.1 s);
2. at once, GET a fixed list of tiles: every layer of layers/catalog.py at each --zoom, with the
   same tiles per zoom (the tile of the densest township seat and the tiles of sampled incidents,
   as bench/tiles.py picks them, distinct; a zoom with fewer distinct tiles than
   --tiles-per-zoom is filled with the tiles around the seat's, as a map view holds them), in one
   shuffled order (fixed seed, the same in every round and mode), from --concurrency keep-alive
   connections (6, a browser's connections per host) with an operator's Bearer token and
   Accept-Encoding: gzip. Each tile is fetched once per server start, so every one is a cache
   miss (X-Tile-Cache is checked);
3. stop the server.

Reported per mode and layer, over all rounds: p50/p95/max of every request, and of the first
--first requests of that layer after each restart; the time from starting the server to its
first 200 from /health. Modes: ``warm`` (the defaults), ``unwarmed``
(GRIDWATCH_WARM_CONNECTIONS=false, still 4 connections opened at start) and ``before``
(GRIDWATCH_WARM_CONNECTIONS=false, GRIDWATCH_POOL_MIN_SIZE=1: the settings before warming).
PostgreSQL is not restarted: its buffer cache stays warm, as when only gridwatch restarts.

    .venv/bin/python bench/cold_tiles.py --database-url postgresql://.../gridwatch_bench_cold \\
        --incidents 1000000 --rounds 5 --mode warm --mode unwarmed --mode before \\
        --concurrency 6 --concurrency 1 --out bench/results/cold_tiles.json

--concurrency 1 (one request at a time) shows each tile's own cost; 6 adds the queueing of a
browser's burst on the server's cores.

Data: the synthetic county and incidents of bench/tiles.py (grown to --incidents when smaller;
an existing database is reused as it is).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from feed import code_version  # noqa: E402
from filing import operator_token  # noqa: E402
from procstats import load_average, start_api, stop  # noqa: E402
from tiles import DENSE_POINT, command_line, ensure_database, grow, percentiles, sample_tiles, tile_at  # noqa: E402

from layers.catalog import LAYERS  # noqa: E402

MODES = {
    "warm": {"GRIDWATCH_WARM_CONNECTIONS": "true"},
    "unwarmed": {"GRIDWATCH_WARM_CONNECTIONS": "false"},
    "before": {"GRIDWATCH_WARM_CONNECTIONS": "false", "GRIDWATCH_POOL_MIN_SIZE": "1"},
}


def tiles_per_zoom(url: str, zooms: list[int], count: int) -> dict[int, list[tuple[int, int, int]]]:
    """``count`` distinct tiles per zoom: sampled as bench/tiles.py does, filled with the ring of
    tiles around the densest seat's where the sample holds fewer distinct ones."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        sampled = sample_tiles(conn, count=max(count, 200))
    chosen = {}
    for z in zooms:
        tiles = list(dict.fromkeys(sampled[z]))[:count]
        _, cx, cy = tile_at(DENSE_POINT, z)
        radius = 1
        while len(tiles) < count:
            ring = [
                (z, cx + dx, cy + dy)
                for dy in range(-radius, radius + 1)
                for dx in range(-radius, radius + 1)
                if max(abs(dx), abs(dy)) == radius
            ]
            tiles += [t for t in ring if t not in tiles][: count - len(tiles)]
            radius += 1
        chosen[z] = tiles
    return chosen


def server_connections(url: str) -> int:
    """Sessions the server holds on the bench database (pools and tile listeners)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]


def fetch_all(
    port: int, token: str, requests: list[tuple[str, int, int, int]], concurrency: int
) -> list[dict]:
    """GET each tile once, ``concurrency`` at a time, in the list's order."""
    results: list[dict] = []
    lock = threading.Lock()
    queue = iter(enumerate(requests))
    began = time.perf_counter()

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                break
            index, (layer, z, x, y) = item
            started = time.perf_counter()
            connection.request("GET", f"/tiles/{layer}/{z}/{x}/{y}.mvt", headers=headers)
            response = connection.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                results.append(
                    {
                        "index": index,
                        "layer": layer,
                        "z": z,
                        "ms": round(elapsed, 2),
                        "status": response.status,
                        "cache": response.getheader("X-Tile-Cache"),
                        "worker": response.getheader("X-Tile-Worker"),
                        "bytes": len(body),
                        "at_ms": round((started - began) * 1000, 1),
                    }
                )
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return sorted(results, key=lambda r: r["index"])


def summarize(runs: list[dict], *, first: int) -> dict:
    """Per mode, concurrency and layer: every request, and the first ``first`` of the layer after
    each start. Keys: "<mode> x<concurrency>"."""
    summary: dict = {}
    for mode, concurrency in dict.fromkeys((r["mode"], r["concurrency"]) for r in runs):
        mine = [r for r in runs if r["mode"] == mode and r["concurrency"] == concurrency]
        rows = {}
        for layer in LAYERS:
            every, firsts, round_p95, round_first_p95 = [], [], [], []
            for run in mine:
                times = [q["ms"] for q in run["requests"] if q["layer"] == layer]
                every += times
                firsts += times[:first]
                round_p95.append(percentiles(times)["p95"])
                round_first_p95.append(percentiles(times[:first])["p95"])
            rows[layer] = {
                "all": percentiles(every),
                "first": percentiles(firsts),
                "p95_per_round": round_p95,
                "first_p95_per_round": round_first_p95,
                "by_zoom_p95": {
                    z: percentiles(
                        [
                            q["ms"]
                            for run in mine
                            for q in run["requests"]
                            if q["layer"] == layer and q["z"] == z
                        ]
                    )["p95"]
                    for z in sorted({q["z"] for q in mine[0]["requests"]})
                },
            }
        summary[f"{mode} x{concurrency}"] = {
            "mode": mode,
            "concurrency": concurrency,
            "rounds": len(mine),
            "startup_s": [r["startup_s"] for r in mine],
            "server_connections_after": [r["server_connections_after"] for r in mine],
            "workers_answering": [len({q["worker"] for q in r["requests"]}) for r in mine],
            "layers": rows,
            "worst_p95_ms": max(row["all"]["p95"] for row in rows.values()),
            "worst_first_p95_ms": max(row["first"]["p95"] for row in rows.values()),
            "cache_hits": sum(1 for r in mine for q in r["requests"] if q["cache"] != "miss"),
            "errors": sum(1 for r in mine for q in r["requests"] if q["status"] not in (200, 204)),
        }
    return summary


REQUEST_FIELDS = ("layer", "z", "ms", "status", "cache", "worker", "bytes", "at_ms")


def dump(report: dict) -> str:
    """The report as JSON, each run's requests as one line of rows (REQUEST_FIELDS, in the order
    they were sent): 15,000 requests stay readable and small."""
    rows = {}
    slim = {**report, "request_fields": REQUEST_FIELDS, "runs": []}
    for i, run in enumerate(report["runs"]):
        key = f"@requests-{i}@"
        slim["runs"].append({**run, "requests": key})
        rows[json.dumps(key)] = json.dumps(
            [[q[f] for f in REQUEST_FIELDS] for q in run["requests"]], separators=(",", ":")
        )
    text = json.dumps(slim, indent=1)
    for key, value in rows.items():
        text = text.replace(key, value)
    return text


def markdown(summary: dict) -> str:
    modes = list(summary)
    header = (
        "| layer | " + " | ".join(f"{m}: p50 / p95 / max ms | {m}: first {{n}} p95 ms" for m in modes) + " |"
    )
    lines = [header, "|---|" + "---:|---:|" * len(modes)]
    for layer in LAYERS:
        cells = []
        for mode in modes:
            row = summary[mode]["layers"][layer]
            cells.append(f"{row['all']['p50']:.1f} / {row['all']['p95']:.1f} / {row['all']['max']:.1f}")
            cells.append(f"{row['first']['p95']:.1f}")
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="the bench database (created when missing)")
    parser.add_argument("--incidents", type=int, default=1_000_000, help="grown to this many when smaller")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mode", action="append", choices=list(MODES), help="default: warm, unwarmed")
    parser.add_argument("--zoom", type=int, action="append", help="default: 5, 8, 11, 14, 16")
    parser.add_argument("--tiles-per-zoom", type=int, default=20)
    parser.add_argument(
        "--concurrency", type=int, action="append", help="connections at a time (default 6; repeatable)"
    )
    parser.add_argument("--first", type=int, default=20, help="the first requests of each layer")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18451)
    parser.add_argument("--seed", type=int, default=7, help="of the request order")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    modes = args.mode or ["warm", "unwarmed"]
    concurrencies = args.concurrency or [6]
    zooms = args.zoom or [5, 8, 11, 14, 16]

    report = {
        "command": command_line(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average_start": load_average(),
        "code": code_version(),
    }
    began = time.perf_counter()
    ensure_database(args.database_url)
    report["loads"] = grow(args.database_url, target=args.incidents, chunk=1_000_000)
    with psycopg.connect(args.database_url) as conn:
        report["incidents"] = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    token = operator_token(args.database_url)
    tiles = tiles_per_zoom(args.database_url, zooms, args.tiles_per_zoom)
    requests = [(layer, *tile) for z in zooms for tile in tiles[z] for layer in LAYERS]
    random.Random(args.seed).shuffle(requests)
    report["tiles"] = {z: tiles[z] for z in zooms}
    report["settings"] = {
        "modes": {m: MODES[m] for m in modes},
        "concurrency": concurrencies,
        "requests_per_start": len(requests),
        "gunicorn": f"{args.workers} workers x 8 threads (gthread), gridwatch serve --only api",
        "first": args.first,
    }
    report["runs"] = []
    with tempfile.TemporaryDirectory(prefix="gridwatch-bench-cold-") as tmp:
        log = (Path(tmp) / "serve.log").open("wb")
        for round_ in range(args.rounds):
            order = modes[round_ % len(modes) :] + modes[: round_ % len(modes)]
            for mode, concurrency in ((m, c) for m in order for c in concurrencies):
                load_before = load_average()
                server, startup = start_api(
                    args.database_url, port=args.port, workers=args.workers, env=MODES[mode], log=log
                )
                try:
                    results = fetch_all(args.port, token, requests, concurrency)
                    connections = server_connections(args.database_url)
                finally:
                    stop(server)
                run = {
                    "round": round_ + 1,
                    "mode": mode,
                    "concurrency": concurrency,
                    "server_connections_after": connections,
                    "startup_s": round(startup, 2),
                    "load_average_before": load_before,
                    "load_average_after": load_average(),
                    "requests": results,
                }
                report["runs"].append(run)
                per_layer = {
                    layer: percentiles([q["ms"] for q in results if q["layer"] == layer])["p95"]
                    for layer in LAYERS
                }
                print(
                    f"round {round_ + 1} {mode:9} x{concurrency} up in {startup:4.1f} s  p95 ms {per_layer}"
                    f"  misses {sum(q['cache'] == 'miss' for q in results)}/{len(results)}"
                    f"  load {run['load_average_after'][0]}",
                    flush=True,
                )
        log.close()
        log_text = (Path(tmp) / "serve.log").read_text(errors="replace")
    report["serve_log_warnings"] = [
        line for line in log_text.splitlines() if "GET /" not in line and "Booting worker" not in line
    ][-30:]
    report["summary"] = summarize(report["runs"], first=args.first)
    report["code_at_end"] = code_version()
    if report["code_at_end"] != report["code"]:
        print(
            f"WARNING: the server's code changed during the run: {report['code']} -> {report['code_at_end']}"
        )
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report["load_average_end"] = load_average()
    report["total_seconds"] = round(time.perf_counter() - began, 1)
    print(markdown(report["summary"]).replace("{n}", str(args.first)))
    for mode, row in report["summary"].items():
        print(
            f"{mode}: worst p95 {row['worst_p95_ms']} ms, worst first-{args.first} p95 "
            f"{row['worst_first_p95_ms']} ms, startup {row['startup_s']} s, cache hits {row['cache_hits']},"
            f" errors {row['errors']}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(dump(report) + "\n")


if __name__ == "__main__":
    main()
