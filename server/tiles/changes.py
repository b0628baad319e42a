"""The change listener: one thread per worker process LISTENs on ``gridwatch_changes`` (sent by
the triggers and the fold of queued rollup changes in sql/functions/tiles_changes.sql) and drops
exactly the cached tiles a change touched. Between notifications it folds the rollup changes that
small writes queued. The change feed (server/feed) announces the same events to browsers, as
``event_document`` describes them.

While the listener is not connected, the cache stores nothing and is emptied on every
(re)connect, since notifications sent meanwhile are lost.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Hashable
from datetime import timedelta

import psycopg
from psycopg.rows import dict_row, tuple_row

from layers.catalog import COVERAGE_LEVEL_ZOOMS, GRID_LEVEL_ZOOMS, LAYERS
from server.db.standby import Freshness, primary_position
from server.tiles.cache import TileCache
from server.tiles.geo import (
    ANNOUNCED_ZOOMS,
    announced_density_tiles,
    bbox_touches_tile,
    density_tiles,
    hexagon_margin,
    point_tiles,
)

log = logging.getLogger(__name__)
CHANNEL = "gridwatch_changes"
# Grid polygons are drawn with a 64-pixel buffer of a 4096 extent: they reach 1/64 tile beyond.
POLYGON_MARGIN = 1 / 64
POINT_MARGIN = 1e-6
# Queued rollup changes are folded this often by every listener: the live map shows a new incident
# within this delay plus one tile fetch, and a fold of a few hundred rows takes milliseconds.
FOLD_INTERVAL_S = 0.25
FOLD_BATCH = 10_000

BBox = tuple[float, float, float, float]


def grid_level_at(z: int, levels: dict[str, tuple[int, int]] = GRID_LEVEL_ZOOMS) -> str:
    """The grid level a layer draws at zoom z (tiles.grid_level in SQL for the grid layers)."""
    for level, (_, highest) in levels.items():
        if z <= highest:
            return level
    return "grid"


class GridBoxes:
    """Level and lon/lat bbox of every grid: what an incident's numbers change on the map."""

    def __init__(self) -> None:
        self._boxes: dict[int, tuple[str, BBox]] = {}
        self._paths: dict[int, list[int]] = {}  # a grid and its ancestors

    SQL = (
        "SELECT id, level, string_to_array(ltree2text(path), '.')::integer[] AS path,"
        " ST_XMin(geom) AS w, ST_YMin(geom) AS s, ST_XMax(geom) AS e, ST_YMax(geom) AS n"
        " FROM grids"
    )

    def load(self, conn: psycopg.Connection) -> None:
        self.set_rows(conn.execute(self.SQL).fetchall())

    def set_rows(self, rows: list[dict]) -> None:
        """The rows of ``GridBoxes.SQL`` (the change feed reads them on its async connection)."""
        self._boxes = {r["id"]: (r["level"], (r["w"], r["s"], r["e"], r["n"])) for r in rows}
        self._paths = {r["id"]: r["path"] for r in rows}

    def box_at_level(self, grid_ids: list[int], level: str) -> BBox | None:
        for grid_id in grid_ids:
            found = self._boxes.get(grid_id)
            if found and found[0] == level:
                return found[1]
        return None

    def boxes(self, grid_ids: list[int]) -> list[BBox]:
        return [self._boxes[g][1] for g in grid_ids if g in self._boxes]

    def ancestor_boxes(self, grid_ids: list[int], level: str) -> list[BBox]:
        """The bbox of each grid's ancestor (or itself) at ``level``."""
        found = (self.box_at_level(self._paths.get(g, [g]), level) for g in grid_ids)
        return [box for box in found if box is not None]


# The events of several notified id ranges, in id order: (firsts bigint[], lasts bigint[]).
EVENTS_IN_RANGES_SQL = (
    "SELECT e.id, e.at, e.kind, e.incident_id, e.status, e.lon, e.lat, e.grid_ids, e.bbox, e.count"
    " FROM unnest(%s::bigint[], %s::bigint[]) AS r (first, last)"
    " JOIN tiles.change_events e ON e.id BETWEEN r.first AND r.last ORDER BY e.id"
)


def events_between(conn: psycopg.Connection, *, first: int, last: int) -> list[dict]:
    return conn.execute(EVENTS_IN_RANGES_SQL, [[first], [last]]).fetchall()


# The events after an id, in id order: (after, limit).
EVENTS_AFTER_SQL = (
    "SELECT e.id, e.at, e.kind, e.incident_id, e.status, e.lon, e.lat, e.grid_ids, e.bbox, e.count"
    " FROM tiles.change_events e WHERE e.id > %s ORDER BY e.id LIMIT %s"
)


def events_after(conn: psycopg.Connection, *, after: int, limit: int) -> list[dict]:
    return conn.execute(EVENTS_AFTER_SQL, [after, limit]).fetchall()


def fold_pending(conn: psycopg.Connection) -> int:
    """Fold the rollup changes that small writes queued (sql/functions/tiles_changes.sql) into the
    rollups and the change log; returns how many queued rows were folded. Safe to call from any
    number of processes at once: one folds, the others return 0 at once."""
    total = 0
    cursor = conn.cursor(row_factory=tuple_row)
    while True:
        count = cursor.execute("SELECT tiles.fold_pending(%s::integer)", [FOLD_BATCH]).fetchone()[0]
        total += count
        if count < FOLD_BATCH:
            return total


def prune_change_events(conn: psycopg.Connection, *, older_than: timedelta) -> int:
    """Forget changes older than ``older_than``; returns how many. A feed client resuming from
    before that gets the events that remain, so it must reload its map after a long absence."""
    return conn.execute("DELETE FROM tiles.change_events WHERE at < now() - %s", [older_than]).rowcount


def event_document(row: dict, grid_boxes: GridBoxes) -> dict:
    """An incident change as the SSE feed announces it: what changed and which tiles to refetch."""
    document = {"id": row["id"], "at": row["at"].isoformat(), "kind": row["kind"]}
    if row["kind"] == "bulk":
        document.update(count=row["count"], bbox=row["bbox"])
        return document
    township = grid_boxes.box_at_level(row["grid_ids"] or [], "township")
    document.update(
        incident_id=row["incident_id"],
        status=row["status"],
        lon=row["lon"],
        lat=row["lat"],
        tiles=point_tiles(row["lon"], row["lat"]),
        density_tiles=announced_density_tiles(row["lon"], row["lat"]),
        grids_bbox=list(township) if township else None,
    )
    return document


def _incident_matcher(rows: list[dict], grid_boxes: GridBoxes) -> Callable[[Hashable], bool]:
    """A predicate over cache keys (names, z, x, y, filters, role) for the tiles these events touch."""
    bulk_boxes = [tuple(r["bbox"]) for r in rows if r["kind"] == "bulk" and r["bbox"]]
    points = [(r["lon"], r["lat"], r["grid_ids"] or []) for r in rows if r["kind"] != "bulk"]
    touched_by_filter: dict[bool, set[tuple[int, int, int]]] = {}

    def hexagon_tiles_touched(filtered: bool) -> set[tuple[int, int, int]]:
        # Worked out on the first cached heatmap tile only: most folds meet none.
        if filtered not in touched_by_filter:
            touched_by_filter[filtered] = {
                (z, x, y)
                for lon, lat, _ in points
                for z in ANNOUNCED_ZOOMS
                for x, y in density_tiles(lon, lat, z, filtered=filtered)
            }
        return touched_by_filter[filtered]

    def matches(key: Hashable) -> bool:
        names, z, x, y, filters = key[0], key[1], key[2], key[3], key[4]
        for name in names:
            changes = LAYERS[name].changes_with
            if "incident_hexagon" in changes:
                # Filtered by status or period, the heatmap draws coarser hexagons.
                filtered = "status=" in filters or "period=" in filters
                if (z, x, y) in hexagon_tiles_touched(filtered):
                    return True
                if any(
                    bbox_touches_tile(box, z, x, y, hexagon_margin(z, max(abs(box[1]), abs(box[3]))))
                    for box in bulk_boxes
                ):
                    return True
            if "incident_point" in changes:
                if any(
                    bbox_touches_tile((lon, lat, lon, lat), z, x, y, POINT_MARGIN) for lon, lat, _ in points
                ):
                    return True
                if any(bbox_touches_tile(box, z, x, y, POINT_MARGIN) for box in bulk_boxes):
                    return True
            if "incident_grids" in changes:
                level = grid_level_at(z)
                for _, _, grid_ids in points:
                    box = grid_boxes.box_at_level(grid_ids, level)
                    if box and bbox_touches_tile(box, z, x, y, POLYGON_MARGIN):
                        return True
                # A bulk statement may touch any grid inside its bbox; the polygons reach beyond.
                if bulk_boxes:
                    return True
        return False

    return matches


def _names_matcher(
    reason: str, boxes: Callable[[int], list[BBox]] | None = None
) -> Callable[[Hashable], bool]:
    """A predicate over cache keys for the layers that change for ``reason``; with ``boxes``, only
    their tiles crossing the polygons drawn at the key's zoom."""

    def matches(key: Hashable) -> bool:
        names, z, x, y = key[0], key[1], key[2], key[3]
        if not any(reason in LAYERS[name].changes_with for name in names):
            return False
        return boxes is None or any(bbox_touches_tile(box, z, x, y, POLYGON_MARGIN) for box in boxes(z))

    return matches


class ChangeListener:
    def __init__(
        self, *, url: str, cache: TileCache, freshness: Freshness, is_closed: Callable[[], bool]
    ) -> None:
        self.url = url
        self.cache = cache
        self.freshness = freshness
        self.grid_boxes = GridBoxes()
        self.is_closed = is_closed
        self.ready = threading.Event()
        # The newest change event applied to the cache: lets a caller wait for a commit to land.
        self.applied_event_id = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def ensure_started(self, wait: float = 5.0) -> bool:
        """Start the thread once (in this process) and wait until it listens."""
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tile-change-listener", daemon=True)
                self._thread.start()
        return self.ready.wait(wait)

    def _run(self) -> None:
        while not self.is_closed():
            try:
                with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.grid_boxes.load(conn)
                    fold_pending(conn)
                    self.freshness.advance(primary_position(conn))
                    self.cache.clear()
                    self.cache.enabled = True
                    self.ready.set()
                    while not self.is_closed():
                        # The generator holds the connection: leave it before querying.
                        notified = conn.notifies(timeout=FOLD_INTERVAL_S, stop_after=1)
                        for payload in [n.payload for n in notified]:
                            self.handle(conn, payload)
                        fold_pending(conn)
            except Exception:  # the database went away or restarted: forget everything, retry
                log.warning("tile change listener lost its connection; retrying", exc_info=True)
            finally:
                self.ready.clear()
                self.freshness.forget()
                self.cache.enabled = False
                self.cache.clear()
            if not self.is_closed():
                threading.Event().wait(1.0)

    def handle(self, conn: psycopg.Connection, payload: str) -> None:
        # First the position reads must reach, then the tiles to rebuild: a tile rebuilt from a
        # standby then includes this change (server/db/standby.py).
        self.freshness.advance(primary_position(conn))
        message = json.loads(payload)
        kind = message["kind"]
        if kind == "incidents":
            rows = events_between(conn, first=message["first"], last=message["last"])
            self.cache.invalidate(_incident_matcher(rows, self.grid_boxes))
            self.applied_event_id = max(self.applied_event_id, message["last"])
        elif kind == "patrols":
            grid_ids = message.get("grid_ids")
            if grid_ids is None:
                self.cache.invalidate(_names_matcher("patrol_grids"))
            else:
                # Zoomed out, coverage draws the patrolled grids' townships.
                boxes = {
                    level: self.grid_boxes.ancestor_boxes(grid_ids, level) for level in COVERAGE_LEVEL_ZOOMS
                }
                self.cache.invalidate(
                    _names_matcher("patrol_grids", lambda z: boxes[grid_level_at(z, COVERAGE_LEVEL_ZOOMS)])
                )
        elif kind == "grids":
            self.grid_boxes.load(conn)
            self.cache.invalidate(_names_matcher("grid_table"))
