"""``GET /health``: is the database reachable, which PostGIS, which schema, how much data."""

from __future__ import annotations

from flask import Blueprint, jsonify

from server.db import get_db
from server.db.migrate import schema_version
from server.errors import DatabaseUnavailable

blueprint = Blueprint("health", __name__)


def read_health(conn) -> dict:
    postgis = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'").fetchone()
    counts = conn.execute(
        """SELECT (SELECT count(*) FROM grids WHERE level = 'grid') AS grids,
                  (SELECT count(*) FROM incidents) AS incidents,
                  (SELECT count(*) FROM tiles.pending_changes) AS queued"""
    ).fetchone()
    return {
        "status": "ok",
        "postgis": postgis["extversion"] if postgis else None,
        "schema_version": schema_version(conn),
        "counts": {"grids": counts["grids"], "incidents": counts["incidents"]},
        # Incident changes not yet in the map's rollups: near 0 while a server runs (it folds
        # them every 250 ms); growing means no server process is folding.
        "rollup_queue": counts["queued"],
    }


@blueprint.get("/health")
def health():
    try:
        with get_db().connection(timeout=2.0) as conn:
            return jsonify(read_health(conn))
    except DatabaseUnavailable as error:
        return jsonify({"status": "unavailable", "error": error.message}), 503
