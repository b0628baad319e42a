"""Warming a pooled connection before it serves a tile.

A new database session pays once for each layer a few milliseconds per statement of the tile
functions to plan it (and, until the heatmap read stored hexagon outlines, about 80 ms to start
PL/Python and import h3). Right after a restart every pooled connection is new, and the first
tiles missed the 50 ms budget (p95 57-103 ms at zoom 5; without warming today, 70-149 ms at six
requests at a time). The pool runs ``warm`` on each connection it opens, so
the first tile a connection serves is as fast as its hundredth (bench/cold_tiles.py).
"""

from __future__ import annotations

import logging
import math

import psycopg

from layers.catalog import LAYERS
from server.auth.scope import SEES_ALL
from server.tiles.build import build_tile
from server.tiles.geo import tile_fraction
from server.tiles.params import Filters

log = logging.getLogger(__name__)
# Zooms at which the layers' SQL takes its different paths: townships, villages and coarse
# hexagons (5), village level and filtered-cell limits (11), grids and points (16).
WARM_ZOOMS = (5, 11, 16)
# A status filter reads the detail rollups, another set of statements.
WARM_FILTERS = (Filters(), Filters(status=("reported",)))


def warm(conn: psycopg.Connection) -> None:
    """Build one tile of every layer at the county's centre at each of ``WARM_ZOOMS``. Never
    fails a connection: a database without the schema yet is simply not warmed."""
    try:
        centre = conn.execute(
            "SELECT ST_X(c) AS lon, ST_Y(c) AS lat"
            " FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c FROM grids WHERE level = 'county') AS county"
        ).fetchone()
        if centre is not None and centre["lon"] is not None:
            for z in WARM_ZOOMS:
                fx, fy = tile_fraction(centre["lon"], centre["lat"], z)
                for layer in LAYERS.values():
                    for filters in WARM_FILTERS if layer.filters else WARM_FILTERS[:1]:
                        build_tile(
                            conn,
                            layers=(layer,),
                            z=z,
                            x=math.floor(fx),
                            y=math.floor(fy),
                            filters=filters,
                            role="admin",
                            scope=SEES_ALL,
                        )
        conn.commit()
    except psycopg.Error:
        log.info("connection not warmed: no tile schema yet", exc_info=True)
        conn.rollback()
