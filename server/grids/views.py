"""``/api/v1/grids``: the grid tree as GeoJSON."""

from __future__ import annotations

from flask import Blueprint

from server import clock, http_input
from server.auth import User, require_user
from server.db import get_db
from server.geojson import geojson_response
from server.grids import service
from server.pagination import decode_cursor, encode_cursor, page_links

blueprint = Blueprint("grids", __name__, url_prefix="/api/v1")

MAX_PAGE = 5000
CURSOR_PURPOSE = "grids"


# Who sees grid members' names: as on the map tiles (sql/0020_tiles.sql), not department handlers.
SEES_MEMBER_NAMES = frozenset({"inspector", "operator", "leader", "admin"})


def as_feature(grid: dict, user: User) -> dict:
    properties = {key: value for key, value in grid.items() if key != "geometry"}
    if user.role not in SEES_MEMBER_NAMES:
        properties["member_name"] = None
    return {"type": "Feature", "id": grid["code"], "geometry": grid["geometry"], "properties": properties}


def _simplify(args: dict) -> float | None:
    return http_input.number(args, "simplify", minimum=1e-7, maximum=0.1)


@blueprint.get("/grids")
def list_grids():
    user = require_user()
    args = http_input.query_args()
    where = service.GridFilter(
        level=http_input.choice(args, "level", service.LEVELS),
        parent=http_input.code(args, "parent"),
        bbox=http_input.bbox(args),
        simplify=_simplify(args),
    )
    limit = http_input.integer(args, "limit", minimum=1, maximum=MAX_PAGE) or 1000
    after = decode_cursor(args.get("cursor"), purpose=CURSOR_PURPOSE, length=1)
    with get_db().connection() as conn:
        rows, next_code = service.list_grids(
            conn, where=where, limit=limit, after=after[0] if after else None
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
def get_grid(code: str):
    user = require_user()
    args = http_input.query_args()
    checked = http_input.code({"code": code}, "code")
    with get_db().connection() as conn:
        grid = service.get_grid(conn, code=checked, now=clock.now(), simplify=_simplify(args))
    return geojson_response(as_feature(grid, user))
