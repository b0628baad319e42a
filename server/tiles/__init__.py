"""Vector tiles and the live change feed. ``app.register_blueprint(tiles.blueprint)`` is all
the app factory does; the per-process state is made when the blueprint is registered."""

from __future__ import annotations

from server.tiles.service import init_app
from server.tiles.views import blueprint

blueprint.record_once(lambda state: init_app(state.app))

__all__ = ["blueprint"]
