"""The per-app tile state of one worker process: the cache and the change listener."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from flask import Flask, current_app

from server.tiles.cache import Entry, TileCache
from server.tiles.changes import ChangeListener

EXTENSION_KEY = "gridwatch.tiles"


class TileService:
    def __init__(self, app: Flask) -> None:
        settings = app.extensions["gridwatch.settings"]
        database = app.extensions["gridwatch.db"]
        self.cache = TileCache(max_bytes=settings.tile_cache_mb * 1024 * 1024)
        self.closed: Callable[[], bool] = lambda: database.pool.closed
        self.listener = ChangeListener(
            url=database.url, cache=self.cache, freshness=database.freshness, is_closed=self.closed
        )

    def tile(self, key: Hashable, build: Callable[[], bytes], max_age: int | None) -> tuple[Entry, bool]:
        # Started on first use, not at import or app creation: gunicorn forks workers after that.
        self.listener.ensure_started()
        return self.cache.get_or_build(key, build, max_age)


def init_app(app: Flask) -> TileService:
    service = TileService(app)
    app.extensions[EXTENSION_KEY] = service
    return service


def get_service() -> TileService:
    return current_app.extensions[EXTENSION_KEY]
