"""Tile benchmark: per layer and zoom 5-18, p50/p95 latency and tile size, for

- uncached: a GET through the Flask app (test client, no network) with the tile cache emptied
  before every request: auth, parsing, SQL, cache bookkeeping;
- cached: the same GET again, served from the in-process cache;
- floor: the same tile function run directly through psycopg;
- naive: one ST_AsMVT over the raw incident points of the tile (what common tile servers do).

Data: a synthetic county (bench/tiles_county.sql) grown in steps of --chunk incidents
(bench/tiles_incidents.sql, one INSERT per step, so the rollup triggers do the work they do for
any writer) up to each --incidents size; the time each step took is reported too.

    .venv/bin/python bench/tiles.py --database-url postgresql://.../gridwatch_bench_tiles \\
        --incidents 1000000 --incidents 10000000 --out bench/results/tiles.json

Samples per zoom: the tile of the densest township seat plus tiles of randomly sampled
incidents (so samples follow the data, as map views do).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from layers.catalog import LAYERS  # noqa: E402
from server.app import create_app  # noqa: E402
from server.auth.users import issue_token  # noqa: E402
from server.db.migrate import migrate  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.tiles.build import tile_statement  # noqa: E402
from server.tiles.geo import tile_fraction  # noqa: E402
from server.tiles.params import Filters  # noqa: E402

ZOOMS = range(5, 19)
DENSE_POINT = (103.3005, 29.7005)  # a township seat of the synthetic county
NAIVE_SQL = """
SELECT ST_AsMVT(t, 'incidents', 4096, 'geom', 'id') AS tile
  FROM (SELECT ST_AsMVTGeom(ST_Transform(i.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 0, true)
               AS geom, i.id, i.category_code, i.status, i.priority
          FROM incidents i
         WHERE i.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4326)) t
"""


def command_line() -> str:
    """This run's command line for the results file, without database passwords."""
    return re.sub(r"(://[^:/@\s]+):[^@\s]+@", r"\1:***@", " ".join(sys.argv))


def ensure_database(url: str) -> None:
    """Create and migrate the bench database when it does not exist (an existing one is used as is)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [info["dbname"]]).fetchone():
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(info["dbname"])))
    migrate(url)


def grow(url: str, *, target: int, chunk: int) -> list[dict]:
    """Add incidents in steps until there are ``target``; returns the time of each step."""
    steps = []
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM grids WHERE code = '900000'").fetchone():
            conn.execute((ROOT / "bench" / "tiles_county.sql").read_text())
        have = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
        while have < target:
            step = min(chunk, target - have)
            conn.execute("SELECT set_config('bench.seed', %s, false)", [str(1 / (2 + have // chunk))])
            conn.execute("SELECT set_config('bench.incidents', %s, false)", [str(step)])
            started = time.perf_counter()
            with conn.transaction():
                conn.execute((ROOT / "bench" / "tiles_incidents.sql").read_text())
            seconds = time.perf_counter() - started
            have += step
            steps.append({"incidents_after": have, "added": step, "seconds": round(seconds, 1)})
            print(f"  +{step:,} incidents (now {have:,}) in {seconds:.1f} s (rollup triggers included)")
        conn.execute("VACUUM ANALYZE")
    return steps


def tile_at(point: tuple[float, float], z: int) -> tuple[int, int, int]:
    fx, fy = tile_fraction(point[0], point[1], z)
    return z, math.floor(fx), math.floor(fy)


def sample_tiles(conn, *, count: int) -> dict[int, list[tuple[int, int, int]]]:
    points = conn.execute(
        "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM incidents TABLESAMPLE SYSTEM (1) REPEATABLE (7)"
        " LIMIT %s",
        [count - 1],
    ).fetchall()
    return {z: [tile_at(DENSE_POINT, z)] + [tile_at((p["lon"], p["lat"]), z) for p in points] for z in ZOOMS}


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {"p50": round(statistics.median(ordered), 2), "p95": round(p95, 2), "max": round(ordered[-1], 2)}


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def bench_size(
    url: str, *, incidents: int, layers: list[str], tiles_per_zoom: int, naive_per_zoom: int
) -> list[dict]:
    app = create_app(Settings(database_url=url, secret_key="bench", pool_max_size=2))
    client = app.test_client()
    service = app.extensions["gridwatch.tiles"]
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        admin_id = conn.execute(
            "INSERT INTO users (username, display_name, role) VALUES ('bench_admin', '基准', 'admin')"
            " ON CONFLICT (username) DO UPDATE SET role = 'admin' RETURNING id"
        ).fetchone()["id"]
        headers = {"Authorization": "Bearer " + issue_token(conn, user_id=admin_id, label="bench")}
        samples = sample_tiles(conn, count=tiles_per_zoom)
        rows = []
        for layer in (LAYERS[name] for name in layers):
            statement = tile_statement((layer,))
            for z in ZOOMS:
                if not layer.shows_zoom(z):
                    continue
                uncached, cached, floor, sizes = [], [], [], []
                for _, x, y in samples[z]:
                    params = {"z": z, "x": x, "y": y, "role": "admin", **Filters().as_sql_args()}
                    started = time.perf_counter()
                    row = conn.execute(statement, params, prepare=True).fetchone()
                    floor.append(ms_since(started))
                    sizes.append(len(row["tile"] or b"") / 1024)
                    path = f"/tiles/{layer.name}/{z}/{x}/{y}.mvt"
                    service.cache.clear()
                    started = time.perf_counter()
                    response = client.get(path, headers=headers)
                    uncached.append(ms_since(started))
                    assert response.headers.get("X-Tile-Cache") == "miss", response.status
                    started = time.perf_counter()
                    response = client.get(path, headers=headers)
                    cached.append(ms_since(started))
                    assert response.headers.get("X-Tile-Cache") == "hit"
                result = {
                    "incidents": incidents,
                    "layer": layer.name,
                    "z": z,
                    "tiles": len(samples[z]),
                    "uncached_ms": percentiles(uncached),
                    "cached_ms": percentiles(cached),
                    "floor_ms": percentiles(floor),
                    "size_kib": percentiles(sizes),
                }
                if layer.name == "incidents" and naive_per_zoom > 0:
                    naive, naive_sizes = [], []
                    for _, x, y in samples[z][:naive_per_zoom]:
                        started = time.perf_counter()
                        row = conn.execute(NAIVE_SQL, {"z": z, "x": x, "y": y}).fetchone()
                        naive.append(ms_since(started))
                        naive_sizes.append(len(row["tile"] or b"") / 1024)
                    result["naive_ms"] = percentiles(naive)
                    result["naive_size_kib"] = percentiles(naive_sizes)
                rows.append(result)
                print(
                    f"  {layer.name:16} z{z:<2} uncached p50 {result['uncached_ms']['p50']:7.1f} "
                    f"p95 {result['uncached_ms']['p95']:7.1f} ms  "
                    f"cached p95 {result['cached_ms']['p95']:5.2f} ms  "
                    f"floor p95 {result['floor_ms']['p95']:7.1f} ms  max {result['size_kib']['max']:6.1f} KiB"
                    + (f"  naive p95 {result['naive_ms']['p95']:8.1f} ms" if "naive_ms" in result else "")
                )
    app.extensions["gridwatch.db"].close()
    return rows


def markdown(results: list[dict]) -> str:
    lines = [
        "| incidents | layer | z | uncached p50 / p95 ms | cached p95 ms | floor p95 ms | size p50 / max KiB "
        "| naive p95 ms / max KiB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        naive = f"{r['naive_ms']['p95']:.0f} / {r['naive_size_kib']['max']:.0f}" if "naive_ms" in r else ""
        lines.append(
            f"| {r['incidents']:,} | {r['layer']} | {r['z']} | {r['uncached_ms']['p50']:.1f} / "
            f"{r['uncached_ms']['p95']:.1f} | {r['cached_ms']['p95']:.2f} | {r['floor_ms']['p95']:.1f} | "
            f"{r['size_kib']['p50']:.1f} / {r['size_kib']['max']:.1f} | {naive} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="the bench database (created when missing)")
    parser.add_argument("--incidents", type=int, action="append", help="sizes to bench, ascending")
    parser.add_argument("--chunk", type=int, default=1_000_000, help="incidents per INSERT when growing")
    parser.add_argument("--layer", action="append", choices=list(LAYERS), help="default: every layer")
    parser.add_argument("--tiles-per-zoom", type=int, default=20)
    parser.add_argument("--naive-per-zoom", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tiles.json")
    args = parser.parse_args()
    sizes = sorted(args.incidents or [1_000_000])
    ensure_database(args.database_url)
    report = {"command": command_line(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    report["loads"], report["results"] = [], []
    for size in sizes:
        print(f"growing to {size:,} incidents")
        report["loads"] += grow(args.database_url, target=size, chunk=args.chunk)
        print(f"benching at {size:,} incidents")
        report["results"] += bench_size(
            args.database_url,
            incidents=size,
            layers=args.layer or list(LAYERS),
            tiles_per_zoom=args.tiles_per_zoom,
            naive_per_zoom=args.naive_per_zoom,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    print(markdown(report["results"]))


if __name__ == "__main__":
    main()
