"""``GET /health``: is the database reachable, which PostGIS, which schema, how much data."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify

from server.db import get_db
from server.db.backup import recorded_last_backup
from server.db.migrate import schema_version
from server.errors import DatabaseUnavailable
from server.settings import Settings

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


def backup_age(settings: Settings) -> dict | None:
    """The newest backup's end and age; None when backups are not set up or none exists. Read
    from the note `gridwatch db backup` leaves (server/db/backup.py): a file, not a subprocess."""
    last_at = recorded_last_backup(settings)
    if last_at is None:
        return None
    return {
        "last_at": last_at.isoformat(),
        "age_seconds": round((datetime.now(UTC) - last_at).total_seconds()),
    }


@blueprint.get("/health")
def health():
    database = get_db()
    try:
        with database.connection(timeout=2.0) as conn:
            document = read_health(conn)
    except DatabaseUnavailable as error:
        return jsonify({"status": "unavailable", "error": error.message}), 503
    # Each standby's state and lag (seconds behind in replay; 0 when it has replayed all it
    # received): a lagging or down standby is skipped for reads, so it degrades, never fails.
    document["standbys"] = [standby.probe().as_dict() for standby in database.standbys]
    document["backup"] = backup_age(current_app.extensions["gridwatch.settings"])
    return jsonify(document)
