"""A pooled connection comes warm for every tile layer (server/tiles/warm.py): the tile
statements are prepared before the first tile is asked for. (No layer runs PL/Python at tile time
since the heatmap reads stored hexagon outlines, tiles.h3_cell_outlines, so there is no h3 import
left to warm.)"""

from __future__ import annotations

from layers.catalog import LAYERS
from server.app import create_app
from server.settings import Settings


def test_a_new_pooled_connection_is_warm_for_every_layer(database_url, tmp_path):
    app = create_app(
        Settings(
            database_url=database_url, var_dir=tmp_path, secret_key="t", pool_min_size=1, pool_max_size=1
        )
    )
    database = app.extensions["gridwatch.db"]
    try:
        database.pool.wait(timeout=30)
        with database.connection() as conn:
            prepared = [
                row["statement"] for row in conn.execute("SELECT statement FROM pg_prepared_statements")
            ]
    finally:
        database.close()
    for layer in LAYERS.values():
        assert any(f'"tiles"."{layer.function}"(' in statement for statement in prepared), layer.name


def test_a_database_without_the_schema_still_lends_connections(empty_database_url, tmp_path):
    app = create_app(
        Settings(database_url=empty_database_url, var_dir=tmp_path, secret_key="t", pool_min_size=1)
    )
    try:
        with app.extensions["gridwatch.db"].connection() as conn:
            assert conn.execute("SELECT 1 AS one").fetchone()["one"] == 1
    finally:
        app.extensions["gridwatch.db"].close()
