"""A wall of screens against gridwatch directly and through nginx (deploy/nginx), and filing
through nginx.

Tiles: `--screens` wall screens (default 50), each with an API token of its own and one keep-alive
connection, each fetching over and over the tiles a wall screen shows of the county at zoom 12
(5 × 3 tiles of the grids and incidents layers, around the county's centre) and revalidating
with If-None-Match as a browser does, while the county files `--live-filings` incidents a second
in that view (so tiles change, as on a live map). Variants:

- direct: gridwatch's workers over plain HTTP;
- nginx, no cache: through nginx over HTTPS with its /tiles/ cache off;
- nginx, cache: through nginx as `gridwatch deploy nginx` renders it (stored tiles,
  revalidated with gridwatch on every request);
- direct, one standby (`--standby`): a second gridwatch whose tiles come from a streaming standby
  of the database (`gridwatch db standby`, on this same machine).

Filing: `POST /api/v1/incidents` from 8 clients, directly and through nginx, after the walls
(its incidents land in the wall's view).

Each variant runs `--rounds` times, interleaved (round 1 of every variant, then round 2, ...);
the table gives the median over rounds. More targets (e.g. nginx in front of a gridwatch with a
standby) go in with `--target NAME=BASE_URL` (an https:// one with a certificate of its own
trusted by `--ca FILE`). Everything runs on this machine over loopback: client,
nginx, gridwatch and PostgreSQL share its cores.

    .venv/bin/python bench/nginx_tiles.py --out bench/results/nginx_tiles.json

Without `--database-url` it starts its own cluster under var/bench/nginx and loads the demo
county (`--incidents`, default 20,000) into it; with it, the database must hold a county.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.auth.users import issue_token  # noqa: E402
from server.db.cluster import Cluster  # noqa: E402
from server.db.migrate import migrate  # noqa: E402
from server.db.replication import create_standby, slot_name  # noqa: E402
from server.demo import load_demo  # noqa: E402
from server.tiles.geo import tile_fraction  # noqa: E402

GRIDWATCH = str(Path(sys.executable).with_name("gridwatch"))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WALL_ZOOM = 12
WALL_COLUMNS, WALL_ROWS = 5, 3  # a 1920 × 1080 screen of 512-pixel vector tiles, partly cut
WALL_LAYERS = ("grids", "incidents")  # what the live map shows by default
FILING_CLIENTS = 8
CATEGORIES = ["safety_hazard", "sanitation", "dispute", "public_facility", "resident_service"]


@dataclass(frozen=True)
class Target:
    name: str
    base: str  # http://… or https://…


def free_port_with_next() -> int:
    """A free port whose successor is free too (`gridwatch serve` puts the feed there)."""
    while True:
        with socket.socket() as probe, socket.socket() as successor:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            try:
                successor.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, context: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up") from None
            time.sleep(0.2)


# -- the county and its credentials ----------------------------------------------------------


def wall_tiles(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        lon, lat = conn.execute(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c"
            " FROM grids WHERE level = 'county') AS county"
        ).fetchone()
    fx, fy = tile_fraction(lon, lat, WALL_ZOOM)
    left, top = math.floor(fx) - WALL_COLUMNS // 2, math.floor(fy) - WALL_ROWS // 2
    return [
        f"/tiles/{layer}/{WALL_ZOOM}/{left + column}/{top + row}.mvt"
        for layer in WALL_LAYERS
        for row in range(WALL_ROWS)
        for column in range(WALL_COLUMNS)
    ]


def operator_tokens(url: str, count: int) -> list[str]:
    """``count`` tokens of the demo operator: one credential per screen."""
    with psycopg.connect(url) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE role = 'operator' ORDER BY id LIMIT 1").fetchone()[
            0
        ]
        return [issue_token(conn, user_id=user_id, label=f"bench screen {n}") for n in range(count)]


def points_in_view(url: str, tiles: list[str], count: int) -> list[tuple[float, float]]:
    """Random points inside grids of the wall's view, where filings change what it shows."""
    z, x, y = (int(part) for part in tiles[0].removesuffix(".mvt").split("/")[-3:])
    x_last, y_last = x + WALL_COLUMNS - 1, y + WALL_ROWS - 1
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(
            """SELECT ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat
                 FROM (SELECT (ST_Dump(ST_GeneratePoints(g.geom, 1, 7))).geom
                         FROM grids g
                        WHERE g.level = 'grid'
                          AND g.geom && ST_Transform(ST_MakeEnvelope(
                                ST_XMin(ST_TileEnvelope(%(z)s, %(x)s, %(y)s)),
                                ST_YMin(ST_TileEnvelope(%(z)s, %(x_last)s, %(y_last)s)),
                                ST_XMax(ST_TileEnvelope(%(z)s, %(x_last)s, %(y_last)s)),
                                ST_YMax(ST_TileEnvelope(%(z)s, %(x)s, %(y)s)), 3857), 4326)
                        ORDER BY random() LIMIT %(count)s) AS p""",
            {"z": z, "x": x, "y": y, "x_last": x_last, "y_last": y_last, "count": count},
        ).fetchall()
    return [(row["lon"], row["lat"]) for row in rows]


# -- clients ---------------------------------------------------------------------------------


def connect(base: str, context: ssl.SSLContext) -> http.client.HTTPConnection:
    parts = urlsplit(base)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def file_one(connection: http.client.HTTPConnection, token: str, point: tuple[float, float]) -> int:
    body = json.dumps(
        {"lon": point[0], "lat": point[1], "category": random.choice(CATEGORIES), "description": "bench"}
    )
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": str(uuid.uuid4()),
    }
    connection.request("POST", "/api/v1/incidents", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(latencies: list[float], seconds: float, **extra) -> dict:
    ordered = sorted(latencies)
    return {
        "per_second": round(len(ordered) / seconds, 1),
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 1),
        "p95_ms": round(percentile(ordered, 0.95) * 1000, 1),
        **extra,
    }


def wall_round(
    target: Target,
    context: ssl.SSLContext,
    tokens: list[str],
    tiles: list[str],
    etags: list[dict[str, str]],
    *,
    seconds: float,
    filer: tuple[str, list[tuple[float, float]], float],
) -> dict:
    """The wall for ``seconds``: every screen loops over its tiles; the filer files meanwhile.
    ``etags`` is each screen's browser cache of this target (kept from round to round)."""
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in tokens]
    statuses: dict[int, int] = {}
    # Which database built the tiles that were not in gridwatch's cache (X-Read-From: with standbys).
    read_from: dict[str, int] = {}
    lock = threading.Lock()

    def screen(index: int) -> None:
        connection = connect(target.base, context)
        headers = {"Authorization": f"Bearer {tokens[index]}", "Accept-Encoding": "gzip"}
        own = etags[index]
        seen: dict[int, int] = {}
        sources: dict[str, int] = {}
        offset = index % len(tiles)  # screens do not all ask for the same tile at once
        while not stop.is_set():
            for path in tiles[offset:] + tiles[:offset]:
                started = time.perf_counter()
                connection.request(
                    "GET", path, headers={**headers, **({"If-None-Match": own[path]} if path in own else {})}
                )
                response = connection.getresponse()
                response.read()
                latencies[index].append(time.perf_counter() - started)
                seen[response.status] = seen.get(response.status, 0) + 1
                if source := response.headers.get("X-Read-From"):
                    sources[source] = sources.get(source, 0) + 1
                if response.status == 200:
                    own[path] = response.headers["ETag"]
                if stop.is_set():
                    break
        connection.close()
        with lock:
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count
            for source, count in sources.items():
                read_from[source] = read_from.get(source, 0) + count

    def file_meanwhile() -> None:
        token, points, rate = filer
        connection = connect(target.base, context)
        while not stop.wait(1 / rate):
            file_one(connection, token, random.choice(points))
        connection.close()

    threads = [threading.Thread(target=screen, args=(i,)) for i in range(len(tokens))]
    threads.append(threading.Thread(target=file_meanwhile))
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    extra = {"read_from": read_from} if read_from else {}
    return summary([value for own in latencies for value in own], elapsed, statuses=statuses, **extra)


def filing_round(target: Target, context: ssl.SSLContext, token: str, points, *, requests: int) -> dict:
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    per_client = requests // FILING_CLIENTS

    def client() -> None:
        connection = connect(target.base, context)
        for _ in range(per_client):
            started = time.perf_counter()
            status = file_one(connection, token, random.choice(points))
            with lock:
                latencies.append(time.perf_counter() - started)
                if status != 201:
                    failures.append(status)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(FILING_CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{target.name}: {len(failures)} filings failed, e.g. HTTP {failures[0]}")
    return summary(latencies, time.perf_counter() - started)


# -- the servers -----------------------------------------------------------------------------


def start_gridwatch(url: str, port: int, var_dir: Path, replica_urls: list[str] = ()) -> subprocess.Popen:
    env = os.environ | {
        "GRIDWATCH_DATABASE_URL": url,
        "GRIDWATCH_REPLICA_URLS": ",".join(replica_urls),
        "GRIDWATCH_VAR_DIR": str(var_dir),
        "GRIDWATCH_SECRET_KEY": "bench",
        "GRIDWATCH_TRUSTED_PROXIES": "1",
        "GRIDWATCH_EVENTS_URL": "/api/v1/events",
    }
    server = subprocess.Popen([GRIDWATCH, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
    wait_for(f"http://127.0.0.1:{port}/health", server)
    return server


def start_nginx(upstream_port: int, directory: Path, *, tile_cache: bool) -> tuple[subprocess.Popen, Target]:
    """nginx as `gridwatch deploy nginx` renders it, with or without its tile cache."""
    port = free_port()
    subprocess.run(
        [
            GRIDWATCH, "deploy", "nginx", "--upstream", f"127.0.0.1:{upstream_port}",
            "--listen", f"127.0.0.1:{port}", "--out", str(directory), "--foreground",
            "--tile-cache" if tile_cache else "--no-tile-cache",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    nginx = subprocess.Popen([NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")])
    base = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=directory / "tls" / "gridwatch.crt")
    wait_for(base + "/health", nginx, context)
    return nginx, Target("nginx, cache" if tile_cache else "nginx, no cache", base)


def fresh_cluster_database(incidents: int) -> tuple[Cluster, str]:
    cluster = Cluster(ROOT / "var" / "bench" / "nginx", free_port())
    cluster.up()
    url = cluster.url
    migrate(url)
    load_demo(url, seed=2184, incident_count=incidents)
    return cluster, url


def markdown(record: dict) -> str:
    lines = [
        "| variant | tiles/s | p50 ms | p95 ms | 200 / 304 of all | filings/s | filing p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, result in record["results"].items():
        wall, filing = result["wall"], result.get("filing")
        statuses = wall["statuses"]
        total = sum(statuses.values())
        share = f"{statuses.get('200', 0) / total:.1%} / {statuses.get('304', 0) / total:.1%}"
        filed = (f"{filing['per_second']}", f"{filing['p95_ms']}") if filing else ("–", "–")
        lines.append(
            f"| {name} | {wall['per_second']} | {wall['p50_ms']} | {wall['p95_ms']} | {share} | "
            f"{filed[0]} | {filed[1]} |"
        )
    return "\n".join(lines)


def median_of(rounds: list[dict]) -> dict:
    statuses: dict[str, int] = {}
    for result in rounds:
        for status, count in result.get("statuses", {}).items():
            statuses[str(status)] = statuses.get(str(status), 0) + count
    merged = {key: statistics.median(r[key] for r in rounds) for key in ("per_second", "p50_ms", "p95_ms")}
    return merged | ({"statuses": statuses} if statuses else {}) | {"rounds": rounds}


def measure(targets: list[Target], context: ssl.SSLContext, url: str, args: argparse.Namespace) -> dict:
    """The interleaved rounds of every target; the record with each one's medians."""
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tiles = wall_tiles(url)
    tokens = operator_tokens(url, args.screens + 1)
    filer_token, screen_tokens = tokens[0], tokens[1:]
    points = points_in_view(url, tiles, 200)
    filer = (filer_token, points, args.live_filings)
    browser_caches = {target.name: [{} for _ in screen_tokens] for target in targets}
    # Warm gridwatch's own tile cache (and every screen's) once through each target.
    for target in targets:
        wall_round(target, context, screen_tokens, tiles, browser_caches[target.name], seconds=2, filer=filer)

    walls: dict[str, list[dict]] = {target.name: [] for target in targets}
    filings: dict[str, list[dict]] = {target.name: [] for target in targets}
    for number in range(args.rounds):
        for target in targets:
            result = wall_round(
                target, context, screen_tokens, tiles, browser_caches[target.name],
                seconds=args.seconds, filer=filer,
            )  # fmt: skip
            walls[target.name].append(result)
            print(f"round {number + 1} {target.name:>16}: wall {result}", flush=True)
    # After the walls: filings in the view would change every tile of the next wall round.
    for number in range(args.rounds):
        for target in targets:
            if target.name == "nginx, no cache":
                continue  # filings do not touch the tile cache: nginx once is enough
            result = filing_round(target, context, filer_token, points, requests=args.filings)
            filings[target.name].append(result)
            print(f"round {number + 1} {target.name:>16}: filing {result}", flush=True)
    record = {
        "command": " ".join(["bench/nginx_tiles.py", *sys.argv[1:]]),
        "started": started,
        "cores": os.cpu_count(),
        "screens": args.screens,
        "tiles_per_screen": len(tiles),
        "tiles": tiles,
        "results": {
            target.name: {"wall": median_of(walls[target.name])}
            | ({"filing": median_of(filings[target.name])} if filings[target.name] else {})
            for target in targets
        },
    }
    return record


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a database holding a county (default: a fresh demo county)")
    parser.add_argument("--incidents", type=int, default=20_000, help="the fresh demo county's incidents")
    parser.add_argument("--screens", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0, help="per wall round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--live-filings", type=float, default=2.0, help="filings a second during wall rounds")
    parser.add_argument("--filings", type=int, default=400, help="POSTs per filing round")
    parser.add_argument(
        "--target", action="append", default=[], metavar="NAME=BASE_URL", help="one more target"
    )
    parser.add_argument("--ca", type=Path, help="a certificate to trust for extra https:// targets")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--standby", action="store_true", help="also: gridwatch reading from a streaming standby"
    )
    args = parser.parse_args()

    cluster = None
    processes: list[subprocess.Popen] = []
    directories: list[Path] = []
    standbys: list[tuple[Cluster, Path]] = []
    try:
        if args.database_url:
            url = args.database_url
        else:
            cluster, url = fresh_cluster_database(args.incidents)
        port = free_port_with_next()
        directories.append(Path(tempfile.mkdtemp(prefix="gridwatch-bench-")))
        processes.append(start_gridwatch(url, port, directories[0]))
        targets = [Target("direct", f"http://127.0.0.1:{port}")]
        for tile_cache in (False, True):
            directory = Path(tempfile.mkdtemp(prefix="gridwatch-bench-nginx-"))
            directory.chmod(0o755)  # as root, nginx's workers (nobody) must reach the cache
            directories.append(directory)
            nginx, target = start_nginx(port, directory, tile_cache=tile_cache)
            processes.append(nginx)
            targets.append(target)
        if args.standby:
            # A streaming standby of the same database (`gridwatch db standby`), and a second
            # gridwatch that reads tiles from it.
            standby_dir = Path(
                tempfile.mkdtemp(prefix="gridwatch-bench-standby-", dir=ROOT / "var" / "bench")
            )
            standby = create_standby(url, into=standby_dir / "standby", port=free_port())
            standbys.append((standby, standby_dir))
            standby_port = free_port_with_next()
            directories.append(Path(tempfile.mkdtemp(prefix="gridwatch-bench-")))
            processes.append(start_gridwatch(url, standby_port, directories[-1], [standby.url]))
            targets.append(Target("direct, one standby", f"http://127.0.0.1:{standby_port}"))
        targets += [Target(*extra.split("=", 1)) for extra in args.target]
        # Each render made its own self-signed certificate: trust those, and --ca's.
        context = ssl.create_default_context()
        certificates = [directory / "tls" / "gridwatch.crt" for directory in directories[1:]]
        for certificate in [path for path in certificates if path.exists()] + ([args.ca] if args.ca else []):
            context.load_verify_locations(cafile=certificate)

        record = measure(targets, context, url, args)
        print(markdown(record))
        if args.out:
            args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)
        for standby, standby_dir in standbys:
            standby.destroy()
            shutil.rmtree(standby_dir, ignore_errors=True)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT pg_drop_replication_slot(%s)", [slot_name(standby.port)])
        if cluster is not None:
            cluster.destroy()


if __name__ == "__main__":
    main()
