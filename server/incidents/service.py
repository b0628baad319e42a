"""Incidents: filing, reading, listing and workflow actions.

Plain functions with keyword-only arguments; the caller owns the transaction, and every function
takes ``now`` (the service clock) instead of reading the time itself.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from server import idempotency
from server.auth.users import User
from server.coords import gcj02_to_wgs84
from server.errors import Conflict, Forbidden, InvalidInput, NotFound, Unprocessable
from server.incidents import effects, workflow
from server.incidents.effects import ActionInput
from server.incidents.photos import CleanPhoto
from server.incidents.queries import INCIDENT_SELECT, SEES_REPORTER, viewer_params, visible_to

CHANNELS = ("app", "hotline_12345", "hotline_110", "wechat", "open311", "import")
PRIORITIES = ("low", "normal", "high", "urgent")
CRS_OPTIONS = ("wgs84", "gcj02")
OUTSIDE_COUNTY = "lon/lat"  # the error field for a point in no grid
# An offline report's observed_at: a phone clock may run a little fast; a queue older than this
# is too stale for the workflow to act on.
OBSERVED_CLOCK_SKEW = timedelta(minutes=5)
OBSERVED_MAX_AGE = timedelta(days=7)


@dataclass(frozen=True)
class Filing:
    """What a reporter sends. Coordinates are in ``crs``; stored as WGS84."""

    lon: float
    lat: float
    category: str
    description: str = ""
    accuracy_m: float | None = None
    crs: str = "wgs84"
    channel: str = "app"
    priority: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    observed_at: datetime | None = None  # when the reporter saw it (an offline report arrives later)
    photos: tuple[CleanPhoto, ...] = ()

    def fingerprint(self) -> bytes:
        """Identifies the request, so a reused Idempotency-Key with a different body is caught."""
        described = {
            "lon": self.lon,
            "lat": self.lat,
            "crs": self.crs,
            "category": self.category,
            "description": self.description,
            "accuracy_m": self.accuracy_m,
            "channel": self.channel,
            "priority": self.priority,
            "reporter_name": self.reporter_name,
            "reporter_phone": self.reporter_phone,
            "observed_at": self.observed_at.isoformat() if self.observed_at else None,
            "photos": [photo.sha256.hex() for photo in self.photos],
        }
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).digest()


@dataclass(frozen=True)
class FilingResult:
    incident: dict
    possible_duplicates: list[dict]
    replayed: bool  # True when an Idempotency-Key found an earlier filing
    photo_locations: list[dict] = field(default_factory=list)


# -- reading ---------------------------------------------------------------------------------


def _params(user: User, now: datetime, **more) -> dict:
    return {**viewer_params(user), "now": now, **more}


def _facts(row: dict) -> workflow.Facts:
    return workflow.Facts(
        status=row["status"],
        in_user_grids=row["in_user_grids"],
        in_user_department=row["in_user_department"],
        self_handled=row["self_handled"],
        handling_level=row["handling_level"],
        rated=row["rated_at"] is not None,
    )


def present(row: dict, user: User) -> dict:
    """An incident row as the API shows it to this user."""
    hidden = {"in_user_grids", "in_user_department", "department_id"}
    if user.role not in SEES_REPORTER:
        hidden |= {"reporter_name", "reporter_phone"}
    return {key: value for key, value in row.items() if key not in hidden}


def _load_query(user: User, *, lock: bool, check_visible: bool = True) -> sql.Composed:
    return sql.SQL("{select} WHERE i.id = %(id)s AND {visible}{lock}").format(
        select=INCIDENT_SELECT,
        visible=visible_to(user) if check_visible else sql.SQL("true"),
        lock=sql.SQL(" FOR UPDATE OF i") if lock else sql.SQL(""),
    )


def _found(row: dict | None, incident_id: int) -> dict:
    if row is None:
        # Also for incidents the user may not see: ids should not reveal other grids' cases.
        raise NotFound(f"no incident {incident_id}", field="id")
    return row


def _load(conn: psycopg.Connection, *, user: User, incident_id: int, now: datetime, lock: bool) -> dict:
    query = _load_query(user, lock=lock)
    return _found(conn.execute(query, _params(user, now, id=incident_id)).fetchone(), incident_id)


def get_incident(
    conn: psycopg.Connection, *, user: User, incident_id: int, now: datetime, check_visible: bool = True
) -> dict:
    """One incident with its event log, photos and the actions the user may take now.
    ``check_visible=False`` only for the actor of a change that took the case out of their sight
    (a department returning it), so they see the result of their own action."""
    # One round trip for the three reads (psycopg pipeline mode).
    with conn.pipeline():
        found = conn.execute(
            _load_query(user, lock=False, check_visible=check_visible), _params(user, now, id=incident_id)
        )
        events = conn.execute(
            """SELECT e.id, e.at, e.action, e.from_status, e.to_status, e.note, e.data,
                      u.username AS actor, u.display_name AS actor_name, u.role AS actor_role
                 FROM incident_events e LEFT JOIN users u ON u.id = e.actor_id
                WHERE e.incident_id = %s ORDER BY e.at, e.id""",
            [incident_id],
        )
        photos = conn.execute(
            """SELECT id, event_id, content_type, width, height FROM incident_photos
                WHERE incident_id = %s ORDER BY id""",
            [incident_id],
        )
    row = _found(found.fetchone(), incident_id)
    return _present_incident(row, user=user, events=events.fetchall(), photos=photos.fetchall())


def _present_incident(row: dict, *, user: User, events: list[dict], photos: list[dict]) -> dict:
    incident = present(row, user)
    incident["events"] = events
    incident["photos"] = photos
    incident["allowed_actions"] = workflow.allowed_actions(user.role, _facts(row))
    return incident


def get_photo(
    conn: psycopg.Connection, *, user: User, incident_id: int, photo_id: int, now: datetime
) -> dict:
    _load(conn, user=user, incident_id=incident_id, now=now, lock=False)
    photo = conn.execute(
        "SELECT content_type, content FROM incident_photos WHERE id = %s AND incident_id = %s",
        [photo_id, incident_id],
    ).fetchone()
    if photo is None:
        raise NotFound(f"no photo {photo_id} on incident {incident_id}", field="photo_id")
    return photo


@dataclass(frozen=True)
class IncidentFilter:
    bbox: tuple[float, float, float, float] | None = None
    grid: str | None = None  # a grid code: the grid and everything below it
    categories: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    reported_after: datetime | None = None
    reported_before: datetime | None = None
    overdue: bool | None = None
    reporter_id: int | None = None  # only what this user filed (``reporter=me``)


def list_incidents(
    conn: psycopg.Connection,
    *,
    user: User,
    now: datetime,
    where: IncidentFilter,
    limit: int,
    after: tuple[datetime, int] | None = None,
) -> tuple[list[dict], tuple[datetime, int] | None]:
    """Incidents newest first by (reported_at, id), ``limit`` at a time. Returns the page and the
    key to continue after (None on the last page)."""
    conditions = [visible_to(user)]
    params = _params(user, now, limit=limit + 1)
    if where.bbox is not None:
        conditions.append(sql.SQL("i.geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)"))
        params.update(zip(("x0", "y0", "x1", "y1"), where.bbox, strict=True))
    if where.grid is not None:
        if conn.execute("SELECT 1 FROM grids WHERE code = %s", [where.grid]).fetchone() is None:
            raise InvalidInput(f"no grid with code {where.grid!r}", field="grid")
        conditions.append(
            sql.SQL(
                """i.grid_id IN (SELECT d.id FROM grids t JOIN grids d ON d.path <@ t.path
                                  WHERE t.code = %(grid)s)"""
            )
        )
        params["grid"] = where.grid
    if where.categories:
        known = {row["code"] for row in conn.execute("SELECT code FROM categories").fetchall()}
        unknown = sorted(set(where.categories) - known)
        if unknown:
            raise InvalidInput(f"unknown category: {', '.join(unknown)}", field="category")
        conditions.append(sql.SQL("i.category_code = ANY(%(categories)s)"))
        params["categories"] = list(where.categories)
    if where.statuses:
        conditions.append(sql.SQL("i.status = ANY(%(statuses)s)"))
        params["statuses"] = list(where.statuses)
    if where.reported_after is not None:
        conditions.append(sql.SQL("i.reported_at >= %(reported_after)s"))
        params["reported_after"] = where.reported_after
    if where.reported_before is not None:
        conditions.append(sql.SQL("i.reported_at < %(reported_before)s"))
        params["reported_before"] = where.reported_before
    if where.overdue is not None:
        conditions.append(sql.SQL("incident_overdue(i.status, i.due_at, i.closed_at, %(now)s) = %(overdue)s"))
        params["overdue"] = where.overdue
    if where.reporter_id is not None:
        conditions.append(sql.SQL("i.reporter_id = %(reporter_id)s"))
        params["reporter_id"] = where.reporter_id
    if after is not None:
        conditions.append(sql.SQL("(i.reported_at, i.id) < (%(after_at)s, %(after_id)s)"))
        params["after_at"], params["after_id"] = after
    # Find the page's ids with a narrow query first, then read the rows: with the joins and
    # per-row columns of INCIDENT_SELECT in the same query, the planner walks the newest-first
    # index past tens of thousands of rows instead of using the spatial or grid index.
    query = sql.SQL(
        """WITH page AS MATERIALIZED (
               SELECT i.id FROM incidents i WHERE {conditions}
                ORDER BY i.reported_at DESC, i.id DESC LIMIT %(limit)s)
           {select} JOIN page ON page.id = i.id ORDER BY i.reported_at DESC, i.id DESC"""
    ).format(select=INCIDENT_SELECT, conditions=sql.SQL(" AND ").join(conditions))
    rows = conn.execute(query, params).fetchall()
    next_key = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_key = (rows[-1]["reported_at"], rows[-1]["id"])
    return [present(row, user) for row in rows], next_key


# -- filing ----------------------------------------------------------------------------------


def file_incident(
    conn: psycopg.Connection,
    *,
    user: User,
    filing: Filing,
    now: datetime,
    idempotency_key: str | None = None,
) -> FilingResult:
    """File a new incident in the finest grid containing its point, with its 'report' event.

    With an ``idempotency_key``, a retry (even a concurrent one) returns the incident the first
    attempt created instead of filing a second one.
    """
    scope = workflow.REPORT_ROLES.get(user.role)
    if scope is None:
        raise Forbidden(f"当前角色不能上报事件 / a {user.role} cannot file incidents", field=None)
    if filing.observed_at is not None:
        _check_observed_at(filing.observed_at, now=now)
    lon, lat = gcj02_to_wgs84(filing.lon, filing.lat) if filing.crs == "gcj02" else (filing.lon, filing.lat)
    fingerprint = filing.fingerprint()
    # Three round trips in all: the lookups and the key claim; the incident, its event and the
    # key's link in one statement; the incident and its possible duplicates.
    with conn.pipeline():
        category_found = conn.execute(
            """SELECT code, default_priority, duplicate_radius_m, duplicate_window
                 FROM categories WHERE code = %s AND active""",
            [filing.category],
        )
        grid_found = conn.execute(
            """SELECT g.id, EXISTS (SELECT 1 FROM grids h WHERE h.member_id = %(viewer)s AND h.path @> g.path)
                      AS mine
                 FROM grids g WHERE g.id = grid_at(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))""",
            {"viewer": user.id, "lon": lon, "lat": lat},
        )
        claim = None
        if idempotency_key is not None:
            claim = idempotency.send_claim(conn, key=idempotency_key, user=user, fingerprint=fingerprint)
    category, grid = category_found.fetchone(), grid_found.fetchone()
    if category is None:
        # Raising rolls the transaction back, the key's claim with it.
        raise Unprocessable(f"未知的事件类别 / unknown category {filing.category!r}", field="category")
    photo_locations = [
        {"photo": index, "lon": photo.gps[0], "lat": photo.gps[1]}
        for index, photo in enumerate(filing.photos)
        if photo.gps is not None
    ]

    if claim is not None and claim.fetchone() is None:
        earlier = idempotency.earlier_request(conn, key=idempotency_key, user=user, fingerprint=fingerprint)[
            "incident_id"
        ]
        incident = get_incident(conn, user=user, incident_id=earlier, now=now)
        duplicates = _possible_duplicates(conn, user=user, incident=incident, category=category, now=now)
        return FilingResult(incident, duplicates, replayed=True, photo_locations=photo_locations)

    if grid is None:
        raise Unprocessable(
            "the point is outside the county's grids / 该位置不在本县网格范围内", field=OUTSIDE_COUNTY
        )
    if scope == workflow.GRID and not grid["mine"]:
        raise Forbidden(
            "you can file incidents only in your own grids / 只能上报本网格的事件", field=OUTSIDE_COUNTY
        )
    channel = filing.channel if user.role == "operator" else "app"
    report_data = _report_data(filing)
    filed = conn.execute(
        """WITH incident AS (
               INSERT INTO incidents (geom, accuracy_m, grid_id, category_code, description, channel,
                                      reporter_id, reporter_name, reporter_phone, priority, reported_at,
                                      updated_at, observed_at)
               VALUES (ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), %(accuracy_m)s, %(grid_id)s,
                       %(category)s, %(description)s, %(channel)s, %(reporter_id)s, %(reporter_name)s,
                       %(reporter_phone)s, %(priority)s, %(now)s, %(now)s, %(observed_at)s)
               RETURNING id
           ), report AS (
               INSERT INTO incident_events (incident_id, at, actor_id, action, to_status, data)
               SELECT id, %(now)s, %(reporter_id)s, 'report', 'reported', %(data)s FROM incident
               RETURNING *
           ), key_link AS (
               UPDATE idempotency_keys SET incident_id = (SELECT id FROM incident) WHERE key = %(key)s
           )
           SELECT * FROM report""",
        {
            "lon": lon,
            "lat": lat,
            "accuracy_m": filing.accuracy_m,
            "grid_id": grid["id"],
            "category": category["code"],
            "description": filing.description,
            "channel": channel,
            "reporter_id": user.id,
            "reporter_name": filing.reporter_name,
            "reporter_phone": filing.reporter_phone,
            "priority": filing.priority or category["default_priority"],
            "now": now,
            "observed_at": filing.observed_at,
            "data": psycopg.types.json.Jsonb(report_data) if report_data else None,
            "key": idempotency_key,
        },
    ).fetchone()
    incident_id = filed["incident_id"]
    photos = _store_photos(conn, incident_id=incident_id, event_id=filed["id"], photos=filing.photos)
    with conn.pipeline():
        found = conn.execute(_load_query(user, lock=False), _params(user, now, id=incident_id))
        nearby = _send_duplicates_query(
            conn,
            user=user,
            now=now,
            category=category,
            incident_id=incident_id,
            lon=lon,
            lat=lat,
            reported_at=now,
        )
    # A new incident's log is the report event just written, its photos the ones just stored.
    row = _found(found.fetchone(), incident_id)
    incident = _present_incident(row, user=user, events=[_event_as_read(filed, user)], photos=photos)
    return FilingResult(incident, nearby.fetchall(), replayed=False, photo_locations=photo_locations)


def _event_as_read(event: dict, actor: User) -> dict:
    """An event row just written, as get_incident reads it (with its actor's names)."""
    return {
        "id": event["id"],
        "at": event["at"],
        "action": event["action"],
        "from_status": event["from_status"],
        "to_status": event["to_status"],
        "note": event["note"],
        "data": event["data"],
        "actor": actor.username,
        "actor_name": actor.display_name,
        "actor_role": actor.role,
    }


def _check_observed_at(observed_at: datetime, *, now: datetime) -> None:
    if observed_at > now + OBSERVED_CLOCK_SKEW:
        raise Unprocessable("观察时间不能晚于当前时间 / observed_at is in the future", field="observed_at")
    if observed_at < now - OBSERVED_MAX_AGE:
        raise Unprocessable(
            "观察时间早于7天前 / observed_at is more than 7 days ago: file a new report", field="observed_at"
        )


def _report_data(filing: Filing) -> dict | None:
    """The 'report' event's data: what the incident row alone does not tell."""
    data = {}
    if filing.crs != "wgs84":
        data["crs"] = filing.crs
    if filing.observed_at is not None:
        data["observed_at"] = filing.observed_at.isoformat()
    return data or None


def _possible_duplicates(
    conn: psycopg.Connection, *, user: User, incident: dict, category: dict, now: datetime
) -> list[dict]:
    return _send_duplicates_query(
        conn,
        user=user,
        now=now,
        category=category,
        incident_id=incident["id"],
        lon=incident["lon"],
        lat=incident["lat"],
        reported_at=incident["reported_at"],
    ).fetchall()


def _send_duplicates_query(
    conn: psycopg.Connection,
    *,
    user: User,
    now: datetime,
    category: dict,
    incident_id: int,
    lon: float,
    lat: float,
    reported_at: datetime,
) -> psycopg.Cursor:
    """Open incidents of the same category near this one and recent enough (the category's
    radius and window), nearest first."""
    radius_m = category["duplicate_radius_m"]
    # A degree bound for the index (metres per degree of longitude shrink with latitude).
    radius_deg = radius_m / (111_320 * max(math.cos(math.radians(lat)), 0.01)) * 1.01
    query = sql.SQL(
        """WITH here AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS p)
           SELECT i.id, i.status, i.reported_at,
                  round(ST_Distance(i.geom::geography, here.p::geography))::integer AS distance_m
             FROM incidents i, here
            WHERE i.category_code = %(category)s AND i.id <> %(id)s AND i.duplicate_of IS NULL
              AND i.status NOT IN ('closed', 'rejected')
              AND i.reported_at BETWEEN %(reported_at)s - %(window)s AND %(reported_at)s + %(window)s
              AND ST_DWithin(i.geom, here.p, %(radius_deg)s)
              AND ST_DWithin(i.geom::geography, here.p::geography, %(radius_m)s)
              AND {visible}
            ORDER BY distance_m, i.id LIMIT 10"""
    ).format(visible=visible_to(user))
    return conn.execute(
        query,
        _params(
            user,
            now,
            lon=lon,
            lat=lat,
            category=category["code"],
            id=incident_id,
            reported_at=reported_at,
            window=category["duplicate_window"],
            radius_deg=radius_deg,
            radius_m=radius_m,
        ),
    )


def _write_event(
    conn: psycopg.Connection,
    *,
    incident_id: int,
    at: datetime,
    actor: User | None,
    action: str,
    from_status: str | None,
    to_status: str,
    note: str | None,
    data: dict | None,
) -> int:
    return conn.execute(
        """INSERT INTO incident_events (incident_id, at, actor_id, action, from_status, to_status, note, data)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        [
            incident_id,
            at,
            actor.id if actor else None,
            action,
            from_status,
            to_status,
            note,
            psycopg.types.json.Jsonb(data) if data else None,
        ],
    ).fetchone()["id"]


def _store_photos(
    conn: psycopg.Connection, *, incident_id: int, event_id: int, photos: tuple[CleanPhoto, ...]
) -> list[dict]:
    """Store the photos; returns them as get_incident lists them."""
    return [
        conn.execute(
            """INSERT INTO incident_photos
                   (incident_id, event_id, content_type, width, height, content, sha256)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               RETURNING id, event_id, content_type, width, height""",
            [
                incident_id,
                event_id,
                photo.content_type,
                photo.width,
                photo.height,
                photo.content,
                photo.sha256,
            ],
        ).fetchone()
        for photo in photos
    ]


# -- workflow actions ------------------------------------------------------------------------


def perform(
    conn: psycopg.Connection,
    *,
    user: User,
    incident_id: int,
    action: str,
    now: datetime,
    given: ActionInput = ActionInput(),  # noqa: B008 - frozen, so sharing the default is safe
) -> dict:
    """Take a workflow action: check role, scope and state, change the incident, write exactly
    one event, all in the caller's transaction. Returns the incident as ``get_incident`` does."""
    transition = workflow.TRANSITIONS.get(action)
    if transition is None:
        raise NotFound(f"no action {action!r}", field="action")
    row = _load(conn, user=user, incident_id=incident_id, now=now, lock=True)
    facts = _facts(row)
    allowed = workflow.allowed_actions(user.role, facts)
    if user.role not in transition.roles:
        raise Forbidden(
            f"当前角色无权执行此操作 / a {user.role} may not {action}",
            field="action",
            allowed_actions=allowed,
        )
    if not workflow.may_act(user.role, transition, facts):
        raise Forbidden(
            f"不在您负责的网格或部门 / '{action}' on this incident is outside your grids or department",
            field="action",
            allowed_actions=allowed,
        )
    blocked = workflow.blocked_by_state(transition, facts)
    if blocked is not None:
        raise Conflict(blocked, field="action", status=row["status"], allowed_actions=allowed)
    if action in workflow.NOTE_REQUIRED and not given.note:
        raise InvalidInput(f"请填写原因 / '{action}' needs a note giving the reason", field="note")
    if now < row["reported_at"]:
        raise Conflict("the clock is earlier than the report time", field="action")

    changes, data = effects.EFFECTS.get(action, effects.no_effect)(conn, row=row, given=given, now=now)
    to_status = transition.to_status or row["status"]
    changes = {"status": to_status, **changes, "updated_at": now}
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(column)) for column in changes)
    conn.execute(
        sql.SQL("UPDATE incidents SET {} WHERE id = %s").format(assignments), [*changes.values(), incident_id]
    )
    event_id = _write_event(
        conn,
        incident_id=incident_id,
        at=now,
        actor=user,
        action=action,
        from_status=row["status"],
        to_status=to_status,
        note=given.note,
        data=data,
    )
    _store_photos(conn, incident_id=incident_id, event_id=event_id, photos=given.photos)
    return get_incident(conn, user=user, incident_id=incident_id, now=now, check_visible=False)


def escalate_overdue(conn: psycopg.Connection, *, now: datetime) -> int:
    """Escalate overdue open incidents one level (grid → village → township → county).

    A case goes to the village when it passes its due time, and one level further for each
    further full time limit it stays open; each call moves a case at most one level, so calling
    it again (e.g. every few minutes) is safe. Writes one 'escalate' event per case, with no
    actor. Returns how many cases moved.
    """
    moved = conn.execute(
        """WITH levels AS (SELECT ARRAY['grid', 'village', 'township', 'county'] AS names),
                due AS (
                    SELECT i.id, i.status, i.handling_level FROM incidents i, levels
                     WHERE i.status NOT IN ('closed', 'rejected') AND i.due_at < %(now)s
                       AND i.dispatched_at IS NOT NULL AND i.due_at > i.dispatched_at
                       AND array_position(levels.names, i.handling_level) < least(4, 2 + floor(
                           extract(epoch FROM %(now)s - i.due_at)
                           / extract(epoch FROM i.due_at - i.dispatched_at)))
                     FOR UPDATE OF i),
                moved AS (
                    UPDATE incidents i
                       SET handling_level = levels.names[array_position(levels.names, i.handling_level) + 1],
                           updated_at = %(now)s
                      FROM due, levels WHERE i.id = due.id
                    RETURNING i.id, due.status, due.handling_level AS old_level,
                              i.handling_level AS new_level)
           INSERT INTO incident_events (incident_id, at, actor_id, action, from_status, to_status, note, data)
           SELECT id, %(now)s, NULL, 'escalate', status, status, 'overdue / 超期自动升级',
                  jsonb_build_object('from', old_level, 'to', new_level, 'automatic', true)
             FROM moved""",
        {"now": now},
    )
    return moved.rowcount
