"""``/api/v1/grids``: the grid tree as GeoJSON."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint
from pydantic import Field

from server import clock
from server.auth import User, require_user
from server.db import get_db
from server.geojson import geojson_response
from server.grids import service
from server.openapi import documented
from server.openapi_schemas import geojson_reply, ref
from server.pagination import CURSOR_DESCRIPTION, decode_cursor, encode_cursor, page_links
from server.schema import CODE_PATTERN, BBox, Code, Integer, QueryModel, Text, parse_query, path_code

blueprint = Blueprint("grids", __name__, url_prefix="/api/v1")

MAX_PAGE = 5000
CURSOR_PURPOSE = "grids"


# Who sees grid members' names: as on the map tiles (sql/functions/tiles_grids.sql), not department handlers.
SEES_MEMBER_NAMES = frozenset({"inspector", "operator", "leader", "admin"})


def as_feature(grid: dict, user: User) -> dict:
    properties = {key: value for key, value in grid.items() if key != "geometry"}
    if user.role not in SEES_MEMBER_NAMES:
        properties["member_name"] = None
    return {"type": "Feature", "id": grid["code"], "geometry": grid["geometry"], "properties": properties}


class GridQuery(QueryModel):
    simplify: float | None = Field(
        None, ge=1e-7, le=0.1, description="Simplify outlines (tolerance in degrees)"
    )


class GridsQuery(GridQuery):
    level: Literal[service.LEVELS] | None = Field(None, description="Only this level")
    parent: Code | None = Field(None, description="Only the children of this grid code")
    bbox: BBox | None = Field(None, description="Only grids intersecting this box")
    limit: Integer = Field(1000, ge=1, le=MAX_PAGE, description="Page size")
    cursor: Text | None = Field(None, max_length=2000, description=CURSOR_DESCRIPTION)


@blueprint.get("/grids")
@documented(
    summary="Grids as GeoJSON, ordered by code",
    query=GridsQuery,
    responses={200: geojson_reply(ref("GridCollection"))},
)
def list_grids():
    user = require_user()
    query = parse_query(GridsQuery)
    where = service.GridFilter(
        level=query.level, parent=query.parent, bbox=query.bbox, simplify=query.simplify
    )
    after = decode_cursor(query.cursor, purpose=CURSOR_PURPOSE, length=1)
    with get_db().read_connection() as conn:
        rows, next_code = service.list_grids(
            conn, where=where, limit=query.limit, after=after[0] if after else None
        )
    next_cursor = encode_cursor([next_code], purpose=CURSOR_PURPOSE) if next_code else None
    return geojson_response(
        {
            "type": "FeatureCollection",
            "features": [as_feature(row, user) for row in rows],
            "numberReturned": len(rows),
            "links": page_links("grids.list_grids", next_cursor),
        }
    )


@blueprint.get("/grids/<code>")
@documented(
    summary="One grid with its ancestors and KPIs (over it and everything below it)",
    query=GridQuery,
    path={"code": {"type": "string", "pattern": CODE_PATTERN}},
    responses={200: geojson_reply(ref("Grid"))},
    errors=(404,),
)
def get_grid(code: str):
    user = require_user()
    query = parse_query(GridQuery)
    checked = path_code(code, field="code")
    with get_db().connection() as conn:
        grid = service.get_grid(conn, code=checked, now=clock.now(), simplify=query.simplify)
    return geojson_response(as_feature(grid, user))
