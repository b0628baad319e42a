"""Patrols: a grid member's walk through their grid, recorded on the phone (a GPS track, or a
single check-in point) and sent once. Coverage (server/analytics/coverage.py) reads them."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Annotated, Literal

import psycopg
from psycopg import sql
from pydantic import AwareDatetime, Field

from server import idempotency
from server.auth.users import User
from server.errors import Forbidden, NotFound, Unprocessable
from server.schema import BodyModel

# A track may stray this far outside its grid (GPS error, the path along the boundary).
GRID_BUFFER_M = 300
# Faster than this on average is not a walk or a ride through a grid: a bad fix or a wrong clock.
MAX_SPEED_KMH = 60
MAX_DURATION = timedelta(hours=12)
# A phone offline for a while still sends its queue; older patrols are refused.
MAX_AGE = timedelta(days=30)
CLOCK_SKEW = timedelta(minutes=2)

Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Position = tuple[Longitude, Latitude]


class LineTrack(BodyModel):
    type: Literal["LineString"]
    coordinates: list[Position] = Field(min_length=2, max_length=20_000)


class PointTrack(BodyModel):
    type: Literal["Point"]
    coordinates: Position


class PatrolInput(BodyModel):
    """``POST /api/v1/patrols``: one patrol."""

    grid: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="The grid walked; default: the one the track lies in",
    )
    started_at: AwareDatetime = Field(description="When the walk began (ISO 8601 with offset)")
    ended_at: AwareDatetime = Field(description="When it ended")
    track: LineTrack | PointTrack = Field(
        discriminator="type", description="GeoJSON LineString (the GPS track) or Point (a check-in), WGS84"
    )

    def fingerprint(self) -> bytes:
        return hashlib.sha256(self.model_dump_json().encode()).digest()


def _check_times(patrol: PatrolInput, now: datetime) -> None:
    if patrol.ended_at < patrol.started_at:
        raise Unprocessable("结束时间早于开始时间 / the patrol ends before it starts", field="ended_at")
    if patrol.ended_at > now + CLOCK_SKEW:
        raise Unprocessable("结束时间在未来 / the patrol ends in the future", field="ended_at")
    if patrol.started_at < now - MAX_AGE:
        raise Unprocessable(
            "巡查超过30天，不能再上传 / patrols older than 30 days are refused", field="started_at"
        )
    if patrol.ended_at - patrol.started_at > MAX_DURATION:
        raise Unprocessable("一次巡查最长12小时 / a patrol lasts at most 12 hours", field="ended_at")


# The grid: the one named, or the member's grid the track lies in (most of it), with what the
# checks need. Patrols belong to grids of the `grid` level, where members are assigned.
_GRID_SQL = """
WITH track AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%(track)s), 4326) AS geom)
SELECT g.id, g.code, g.level, g.member_id,
       ST_Covers(ST_Buffer(g.geom::geography, %(buffer)s)::geometry, t.geom) AS near,
       ST_Length(t.geom::geography) AS length_m
  FROM track t JOIN grids g ON g.level = 'grid'
 WHERE CASE WHEN %(code)s::text IS NULL
            THEN g.member_id = %(user)s AND ST_DWithin(g.geom::geography, t.geom::geography, %(buffer)s)
            ELSE g.code = %(code)s END
 ORDER BY ST_Length(ST_Intersection(g.geom, t.geom)) DESC, ST_Intersects(g.geom, t.geom) DESC, g.id
 LIMIT 1
"""


def record_patrol(
    conn: psycopg.Connection, *, user: User, patrol: PatrolInput, now: datetime, idempotency_key: str | None
) -> tuple[dict, bool]:
    """Record the patrol; returns it and whether an earlier attempt with the same key had."""
    if user.role != "inspector":
        raise Forbidden("只有网格员可以上传巡查 / only grid members record patrols", field=None)
    _check_times(patrol, now)
    fingerprint = patrol.fingerprint()
    if idempotency_key is not None:
        claimed = idempotency.send_claim(conn, key=idempotency_key, user=user, fingerprint=fingerprint)
        if claimed.fetchone() is None:
            earlier = idempotency.earlier_request(
                conn, key=idempotency_key, user=user, fingerprint=fingerprint
            )
            return get_patrol(conn, patrol_id=earlier["patrol_id"]), True
    track = json.dumps(patrol.track.model_dump())
    grid = conn.execute(
        _GRID_SQL, {"track": track, "buffer": GRID_BUFFER_M, "code": patrol.grid, "user": user.id}
    ).fetchone()
    if grid is None and patrol.grid is not None:
        raise NotFound(f"no grid {patrol.grid!r} at the grid level", field="grid")
    if grid is None:
        raise Unprocessable("巡查轨迹不在您的网格内 / the track is not in any of your grids", field="track")
    if grid["member_id"] != user.id:
        raise Forbidden("您不是该网格的网格员 / you are not the member of this grid", field="grid")
    if not grid["near"]:
        raise Unprocessable(
            f"巡查轨迹超出网格{GRID_BUFFER_M}米 / the track leaves the grid by over {GRID_BUFFER_M} m",
            field="track",
        )
    hours = max((patrol.ended_at - patrol.started_at).total_seconds(), 60) / 3600
    if grid["length_m"] / 1000 / hours > MAX_SPEED_KMH:
        raise Unprocessable(
            f"轨迹速度超过每小时{MAX_SPEED_KMH}公里 / the track is faster than {MAX_SPEED_KMH} km/h",
            field="track",
        )
    row = conn.execute(
        """WITH patrol AS (
               INSERT INTO patrols (user_id, grid_id, started_at, ended_at, geom, created_at)
               VALUES (%(user)s, %(grid)s, %(started)s, %(ended)s,
                       ST_SetSRID(ST_GeomFromGeoJSON(%(track)s), 4326), %(now)s)
               RETURNING id
           ), key_link AS (
               UPDATE idempotency_keys SET patrol_id = (SELECT id FROM patrol) WHERE key = %(key)s
           )
           SELECT id FROM patrol""",
        {
            "user": user.id,
            "grid": grid["id"],
            "started": patrol.started_at,
            "ended": patrol.ended_at,
            "track": track,
            "now": now,
            "key": idempotency_key,
        },
    ).fetchone()
    return get_patrol(conn, patrol_id=row["id"]), False


_PATROL_SELECT = sql.SQL("""
SELECT p.id, g.code AS grid, g.name_zh AS grid_name, p.user_id, u.display_name AS member,
       p.started_at, p.ended_at, round(ST_Length(p.geom::geography))::integer AS length_m,
       ST_AsGeoJSON(p.geom, 6)::json AS track
  FROM patrols p JOIN grids g ON g.id = p.grid_id JOIN users u ON u.id = p.user_id
""")


def get_patrol(conn: psycopg.Connection, *, patrol_id: int) -> dict:
    return _present(conn.execute(_PATROL_SELECT + sql.SQL(" WHERE p.id = %s"), [patrol_id]).fetchone())


def list_patrols(
    conn: psycopg.Connection,
    *,
    grid: str | None,
    user_id: int | None,
    started_from: datetime | None,
    started_before: datetime | None,
    limit: int,
) -> list[dict]:
    """Patrols newest first; ``grid`` includes every grid below it."""
    rows = conn.execute(
        _PATROL_SELECT
        + sql.SQL(""" WHERE (%(grid)s::text IS NULL
                     OR p.grid_id IN (SELECT d.id FROM grids d JOIN grids a ON d.path <@ a.path
                                       WHERE a.code = %(grid)s))
                AND (%(user)s::integer IS NULL OR p.user_id = %(user)s)
                AND (%(from)s::timestamptz IS NULL OR p.started_at >= %(from)s)
                AND (%(before)s::timestamptz IS NULL OR p.started_at < %(before)s)
              ORDER BY p.started_at DESC, p.id DESC LIMIT %(limit)s"""),
        {"grid": grid, "user": user_id, "from": started_from, "before": started_before, "limit": limit},
    ).fetchall()
    return [_present(row) for row in rows]


def _present(row: dict) -> dict:
    return {
        "type": "Feature",
        "id": row["id"],
        "geometry": row["track"],
        "properties": {
            "grid": row["grid"],
            "grid_name": row["grid_name"],
            "user_id": row["user_id"],
            "member": row["member"],
            "started_at": row["started_at"].isoformat(),
            "ended_at": row["ended_at"].isoformat(),
            "length_m": row["length_m"],
        },
    }
