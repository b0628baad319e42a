"""Building a tile: one SQL statement concatenating the layers' tile functions.

Mapbox Vector Tiles are a protobuf whose layers are a repeated field, so the bytes of
single-layer tiles concatenate into one multi-layer tile.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from layers.catalog import Layer
from server.auth.scope import Scope
from server.tiles.params import Filters

_ARGUMENTS = (
    "%(z)s, %(x)s, %(y)s, %(category)s::text[], %(status)s::text[],"
    " %(period_start)s::date, %(period_end)s::date, %(role)s"
)
_SCOPE_ARGUMENTS = ", %(scope_grids)s::integer[], %(scope_department)s::integer"


def tile_statement(layers: tuple[Layer, ...]) -> sql.Composed:
    calls = [
        sql.SQL("{}(" + _ARGUMENTS + (_SCOPE_ARGUMENTS if layer.scoped else "") + ")").format(
            sql.Identifier("tiles", layer.function)
        )
        for layer in layers
    ]
    return sql.SQL("SELECT {} AS tile").format(sql.SQL(" || ").join(calls))


def build_tile(
    conn: psycopg.Connection,
    *,
    layers: tuple[Layer, ...],
    z: int,
    x: int,
    y: int,
    filters: Filters,
    role: str,
    scope: Scope,
) -> bytes:
    """The tile's bytes (empty when no feature) as a viewer of ``role`` and ``scope`` reads it.
    Layers must be readable by ``role``: the caller checks that against the catalog."""
    shown = tuple(layer for layer in layers if layer.shows_zoom(z))
    if not shown:
        return b""
    params = {"z": z, "x": x, "y": y, "role": role, **filters.as_sql_args(), **scope.sql_params()}
    row = conn.execute(tile_statement(shown), params, prepare=True).fetchone()
    tile = row["tile"] if isinstance(row, dict) else row[0]
    return bytes(tile or b"")
