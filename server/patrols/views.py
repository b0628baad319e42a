"""``/api/v1/patrols``: grid members record patrols; the grid center and leaders list them."""

from __future__ import annotations

from datetime import date, datetime, time

from flask import Blueprint
from pydantic import Field

from server import clock, idempotency
from server.analytics.period import calendar_zone
from server.auth import require_user
from server.db import get_db
from server.errors import Forbidden, NotFound
from server.geojson import geojson_response
from server.openapi import IDEMPOTENCY_KEY, documented
from server.openapi_schemas import geojson_reply
from server.patrols.service import PatrolInput, list_patrols, record_patrol
from server.schema import Day, QueryModel, parse_body, parse_query

blueprint = Blueprint("patrols", __name__, url_prefix="/api/v1")

# Who may list patrols: everyone's for the center and leaders, one's own for a grid member.
LISTS_ALL = frozenset({"operator", "leader", "admin"})


class PatrolQuery(QueryModel):
    """Parameters of ``GET /api/v1/patrols``."""

    grid: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,40}$", description="A grid code: it and below")
    user: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{2,64}$", description="A grid member's username")
    from_: Day | None = Field(None, alias="from", description="Started on or after this local date")
    to: Day | None = Field(None, description="Started before this local date")
    limit: int = Field(200, ge=1, le=1000, description="At most this many, newest first")


PATROL = {"type": "object", "properties": {"type": {"type": "string"}, "id": {"type": "integer"}}}


@blueprint.post("/patrols")
@documented(
    summary="Record a patrol (grid members): a GPS track or a check-in point; send an Idempotency-Key so a"
    " retry records it once",
    body=PatrolInput,
    headers=(IDEMPOTENCY_KEY,),
    responses={
        201: geojson_reply(PATROL, "recorded"),
        200: geojson_reply(PATROL, "an earlier attempt with this Idempotency-Key recorded it"),
    },
    errors=(403, 404),
)
def add_patrol():
    user = require_user()
    patrol = parse_body(PatrolInput)
    with get_db().connection() as conn:
        recorded, replayed = record_patrol(
            conn, user=user, patrol=patrol, now=clock.now(), idempotency_key=idempotency.key_from_request()
        )
    response = geojson_response(recorded, 200 if replayed else 201)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@blueprint.get("/patrols")
@documented(
    summary="Patrols, newest first (a grid member: their own)",
    query=PatrolQuery,
    responses={200: geojson_reply({"type": "object"}, "a FeatureCollection of patrol tracks")},
    errors=(403, 404),
)
def patrols():
    user = require_user()
    query = parse_query(PatrolQuery)
    if user.role not in LISTS_ALL and user.role != "inspector":
        raise Forbidden("this role may not read patrols", field=None)
    with get_db().read_connection() as conn:
        user_id = user.id if user.role == "inspector" else None
        if query.user is not None:
            found = conn.execute("SELECT id FROM users WHERE username = %s", [query.user]).fetchone()
            if found is None:
                raise NotFound(f"no user {query.user!r}", field="user")
            if user_id is not None and found["id"] != user_id:
                raise Forbidden("a grid member lists their own patrols", field="user")
            user_id = found["id"]
        zone = calendar_zone(conn)

        def local(day: date | None) -> datetime | None:
            return datetime.combine(day, time(), zone) if day else None

        features = list_patrols(
            conn,
            grid=query.grid,
            user_id=user_id,
            started_from=local(query.from_),
            started_before=local(query.to),
            limit=query.limit,
        )
    return geojson_response({"type": "FeatureCollection", "features": features})
