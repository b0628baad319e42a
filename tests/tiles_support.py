"""Helpers for the tile tests: tokens per role, tile coordinates, filing incidents with plain SQL
(any writer must invalidate tiles, not only the API), and a live HTTP server in a thread."""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager

import mapbox_vector_tile
import psycopg
from werkzeug.serving import make_server

from server.auth.users import issue_token
from server.tiles.changes import fold_pending
from server.tiles.geo import tile_fraction

# Inside grid 511423001001001 of the small county, in the zoom-16 tile of its fixture incident
# (103.3125, 29.875); FAR is in another township.
NEAR = (103.3127, 29.8752)
FAR = (103.3895, 29.9395)


def tile_of(point: tuple[float, float], z: int) -> tuple[int, int, int]:
    fx, fy = tile_fraction(point[0], point[1], z)
    return z, math.floor(fx), math.floor(fy)


def tile_path(layers: str, point: tuple[float, float], z: int) -> str:
    z, x, y = tile_of(point, z)
    return f"/tiles/{layers}/{z}/{x}/{y}.mvt"


def token_for(database_url: str, username: str) -> str:
    with psycopg.connect(database_url) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE username = %s", [username]).fetchone()[0]
        return issue_token(conn, user_id=user_id, label="tile tests")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def file_incident(database_url: str, point: tuple[float, float], category: str = "dispute") -> int:
    """A new incident committed by a plain INSERT, as any writer could."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            """INSERT INTO incidents (geom, grid_id, category_code, channel, description)
               SELECT p, grid_at(p), %s, 'hotline_12345', 'tile test'
                 FROM ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS p
            RETURNING id""",
            [category, point[0], point[1]],
        ).fetchone()[0]


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data) if data else {}


def wait_for_event(app, event_id: int, deadline_s: float = 5.0) -> None:
    """Wait until this process's change listener applied a change event to its cache."""
    listener = app.extensions["gridwatch.tiles"].listener
    end = time.monotonic() + deadline_s
    while listener.applied_event_id < event_id:
        assert time.monotonic() < end, "the change listener never applied the change"
        time.sleep(0.01)


def last_event_id(database_url: str) -> int:
    """Fold the queued rollup changes, as a server's listener would within 250 ms, and return the
    newest change event id."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        fold_pending(conn)
        return conn.execute("SELECT coalesce(max(id), 0) FROM tiles.change_events").fetchone()[0]


@contextmanager
def live_server(app):
    """The app behind a real HTTP server (threaded werkzeug) on a free port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
