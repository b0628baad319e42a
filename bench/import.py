"""Import benchmark: `gridwatch import grids` of a whole county and `import incidents` of 100k rows.

It starts its own cluster under var/bench/import/ (durability on, as `make run`), loads the demo
county (2,184 grids in 13 townships and 150 villages) into one fresh database, and then:

- **grids**: writes every grid of the demo (all levels, 2,348 features) to a GeoPackage and
  imports it into a second, empty database, topology checks included (docs/importing.md);
- **incidents**: writes N random points inside the county to a CSV (seeded) and imports it into
  the demo database.

Each import runs in its own transaction, committed. Wall time on a machine whose cores other work
shares says little, so the CPU time each import used (this process and the bench cluster's) and
the load average before and after are recorded with it.

    .venv/bin/python bench/import.py --incidents 100000 --out bench/results/import.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pyogrio.raw
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import cluster_cpu_seconds, free_port, fresh_database, own_cpu_seconds  # noqa: E402
from server.db.cluster import Cluster  # noqa: E402
from server.demo import load_demo  # noqa: E402
from server.importers.grids import import_grids  # noqa: E402
from server.importers.incidents import import_incidents  # noqa: E402

CATEGORIES = ("safety_hazard", "straw_burning", "sanitation", "dispute", "public_facility")


def write_grids(url: str, path: Path) -> int:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT g.code, g.name_zh, p.code, g.level, ST_AsBinary(g.geom)
                 FROM grids g LEFT JOIN grids p ON p.id = g.parent_id
                ORDER BY g.code"""
        ).fetchall()
    columns = list(zip(*rows, strict=True))
    pyogrio.raw.write(
        path,
        np.array([bytes(wkb) for wkb in columns[4]], dtype=object),
        [np.array(values, dtype=object) for values in columns[:4]],
        fields=["code", "name", "parent", "level"],
        geometry_type="MultiPolygon",
        crs="EPSG:4326",
        driver="GPKG",
    )
    return len(rows)


def write_incidents(url: str, path: Path, count: int, seed: int) -> None:
    with psycopg.connect(url) as conn:
        points = conn.execute(
            """SELECT ST_AsBinary(ST_GeneratePoints(geom, %s, %s)) FROM grids WHERE level = 'county'""",
            [count, seed],
        ).fetchone()[0]
    xy = shapely.get_coordinates(shapely.get_parts(shapely.from_wkb(bytes(points))))
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["lon", "lat", "category", "description", "reported_at"])
        for number, (lon, lat) in enumerate(xy):
            writer.writerow(
                [
                    f"{lon:.7f}",
                    f"{lat:.7f}",
                    CATEGORIES[number % len(CATEGORIES)],
                    "导入测试",
                    "2026-06-01 08:30",
                ]
            )


def timed(cluster: Cluster, url: str, function, **options) -> dict:
    """Wall seconds and CPU seconds (python, database) of one import, committed."""
    with psycopg.connect(url) as conn:
        cpu_before = (own_cpu_seconds(), cluster_cpu_seconds(cluster))
        started = time.perf_counter()
        function(conn, **options)
        conn.commit()
        seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": {
            "python": round(own_cpu_seconds() - cpu_before[0], 2),
            "database": round(cluster_cpu_seconds(cluster) - cpu_before[1], 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2184)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    cluster = Cluster(ROOT / "var" / "bench" / "import", free_port())
    cluster.up()
    files = cluster.data_dir.parent
    try:
        demo_url = fresh_database(cluster, "gridwatch_bench_import_demo")
        load_demo(demo_url, seed=args.seed, incident_count=0)
        grid_file, incident_file = files / "grids.gpkg", files / "incidents.csv"
        grid_count = write_grids(demo_url, grid_file)
        write_incidents(demo_url, incident_file, args.incidents, args.seed)

        load_before = os.getloadavg()[0]
        grid_url = fresh_database(cluster, "gridwatch_bench_import_grids")
        grids = timed(cluster, grid_url, import_grids, path=grid_file, strict=True)
        incidents = timed(cluster, demo_url, import_incidents, path=incident_file)
        load_after = os.getloadavg()[0]
    finally:
        cluster.destroy()

    result = {
        "grids": {"features": grid_count, **grids},
        "incidents": {"rows": args.incidents, **incidents},
        "load_average_before": round(load_before, 1),
        "load_average_after": round(load_after, 1),
    }
    print(
        f"grids: {grid_count:,} features in {grids['seconds']} s (CPU {grids['cpu_seconds']}); "
        f"incidents: {args.incidents:,} rows in {incidents['seconds']} s (CPU {incidents['cpu_seconds']}) "
        f"(load average {load_before:.1f} → {load_after:.1f} on {os.cpu_count()} cores)"
    )
    if args.out:
        record = {
            "command": " ".join(["bench/import.py", *sys.argv[1:]]),
            "started": started,
            "cores": os.cpu_count(),
            **result,
        }
        args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
