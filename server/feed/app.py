"""The change feed's aiohttp application: ``GET /api/v1/events`` and the feed's ``/health``.

One LISTEN connection per process reads the change events that the tile listeners' folds log
(sql/functions/tiles_changes.sql), and the ends of credentials (sql/functions/auth.sql); the hub
fans events out to the streams.
Authentication reuses the API's own lookups (tokens, login sessions) on a small pool of
ordinary connections, in threads: they run once per stream, not per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from aiohttp import web
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from layers.catalog import LAYERS
from server import clock
from server.auth import SESSION_SECRET
from server.auth.scope import Scope, scope_of
from server.auth.sessions import session_user
from server.auth.users import User, get_user, token_user
from server.errors import GridwatchError, InvalidInput, Unauthorized, language_of
from server.feed.hub import Hub, Stream, encode, events_past, scoped_document, visible
from server.feed.urls import EVENTS_PATH, same_host
from server.secret_key import resolve_secret_key
from server.settings import Settings
from server.tiles.changes import (
    CHANNEL,
    EVENTS_AFTER_SQL,
    EVENTS_IN_RANGES_SQL,
    GridBoxes,
    event_document,
    events_after,
)

log = logging.getLogger(__name__)
AUTH_CHANNEL = "gridwatch_auth"
# Notifications arriving within this window go out as one batch (one write per stream).
BATCH_WINDOW_S = 0.1
BACKFILL_LIMIT = 1000
DOCUMENTS_KEPT = 2 * BACKFILL_LIMIT
RETRY = b"retry: 2000\n\n"
SETTINGS_KEY = web.AppKey("settings", Settings)


# A department handler sees the incidents dispatched to their department now, as in the REST API.
DEPARTMENTS_SQL = "SELECT id, department_id FROM incidents WHERE id = ANY (%s::bigint[])"


def _incident_ids(rows: list[dict]) -> list[int]:
    return [row["incident_id"] for row in rows if row["incident_id"] is not None]


@dataclass(frozen=True)
class Viewer:
    """Who opened a stream: the user, and the credential whose end ends the stream (an API
    token's id, or a login session's id and when it ends unless renewed, in time.time() seconds)."""

    user: User
    token_id: int | None = None
    session_id: int | None = None
    ends_at: float | None = None


class Feed:
    """The state of one feed process: its hub, the listener and the database pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.resolved_database_url()
        self.hub = Hub(per_user=settings.feed_streams_per_user, total=settings.feed_max_streams)
        self.grid_boxes = GridBoxes()
        self.pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=4,
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=False,
            name="gridwatch-feed",
        )
        # The login cookie is Flask's signed cookie holding the session's secret: read it with
        # Flask's own serializer, then look the session up (server/auth/sessions.py).
        signer = Flask("gridwatch-feed")
        signer.secret_key = resolve_secret_key(settings)
        self.sessions = SecureCookieSessionInterface().get_signing_serializer(signer)
        self.session_lifetime = timedelta(hours=settings.session_hours)
        self.listening = False
        self.last_event_id = 0
        # Documents of recent events: clients dropped together reconnect together, and each
        # resume replays the same events (a document takes about 3 ms to build).
        self._documents: OrderedDict[int, dict] = OrderedDict()
        self._documents_lock = threading.Lock()
        self._tasks: list[asyncio.Task] = []

    # -- credentials ------------------------------------------------------------------

    def authenticate(self, authorization: str | None, session_cookie: str | None) -> Viewer | None:
        """The caller as the API would see it (blocking: run it in a thread)."""
        with self.pool.connection() as conn:
            if authorization:
                scheme, _, token = authorization.partition(" ")
                if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
                    return None
                found = token_user(conn, token=token.strip(), now=clock.now())
                return Viewer(found[1], token_id=found[0]) if found else None
            if not session_cookie:
                return None
            try:
                data = self.sessions.loads(session_cookie, max_age=self.session_lifetime.total_seconds())
            except BadSignature:
                return None
            secret = data.get(SESSION_SECRET) if isinstance(data, dict) else None
            if not isinstance(secret, str):
                return None
            found = session_user(conn, secret=secret, now=clock.now(), idle=self.session_lifetime)
            if found is None:
                return None
            session_id, user, ends_at = found
            return Viewer(user, session_id=session_id, ends_at=ends_at.timestamp())

    def reload_users(self, user_ids: list[int]) -> dict[int, User | None]:
        with self.pool.connection() as conn:
            return {user_id: get_user(conn, user_id=user_id) for user_id in user_ids}

    def document(self, row: dict) -> dict:
        """The event as streams announce it, built once (the event loop and resumes in threads
        both ask)."""
        with self._documents_lock:
            document = self._documents.get(row["id"])
        if document is None:
            document = event_document(row, self.grid_boxes)
            with self._documents_lock:
                self._documents[row["id"]] = document
                if len(self._documents) > DOCUMENTS_KEPT:
                    self._documents.popitem(last=False)
        return document

    def resume(self, scope: Scope, after: int) -> tuple[int, bytes]:
        """What a stream resuming after event ``after`` missed, encoded, and the last event id
        the stream now holds: ``after`` itself when it missed nothing (blocking: run it in a
        thread)."""
        with self.pool.connection() as conn:
            rows = events_after(conn, after=after, limit=BACKFILL_LIMIT)
            found = conn.execute(DEPARTMENTS_SQL, [_incident_ids(rows)]).fetchall() if rows else []
        departments = {row["id"]: row["department_id"] for row in found}
        encoded = b"".join(
            encode(scoped_document(scope, self.document(row)))
            for row in rows
            if visible(scope, row, departments)
        )
        return (rows[-1]["id"] if rows else after), encoded

    # -- the listener -----------------------------------------------------------------

    async def listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, row_factory=dict_row
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await conn.execute(f"LISTEN {AUTH_CHANNEL}")
                    await self._load_grid_boxes(conn)
                    await self._catch_up(conn)
                    self.listening = True
                    while True:
                        notified = [n async for n in conn.notifies(timeout=BATCH_WINDOW_S)]
                        if notified:
                            await self.handle(conn, notified)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("change feed lost its database connection; retrying", exc_info=True)
            finally:
                self.listening = False
            await asyncio.sleep(1.0)

    async def _load_grid_boxes(self, conn: psycopg.AsyncConnection) -> None:
        self.grid_boxes.set_rows(await (await conn.execute(GridBoxes.SQL)).fetchall())

    async def _catch_up(self, conn: psycopg.AsyncConnection) -> None:
        """After a (re)connect: announce what was logged while not listening, and end streams
        whose credentials ended meanwhile (those notifications are lost)."""
        if self.last_event_id == 0:
            row = await (
                await conn.execute("SELECT coalesce(max(id), 0) AS id FROM tiles.change_events")
            ).fetchone()
            self.last_event_id = row["id"]
        else:
            cursor = await conn.execute(EVENTS_AFTER_SQL, [self.last_event_id, BACKFILL_LIMIT])
            await self._publish(conn, await cursor.fetchall())
        user_ids = sorted({stream.user.id for stream in self.hub.streams()})
        if user_ids:
            self.hub.rescope(await asyncio.to_thread(self.reload_users, user_ids))

    async def handle(self, conn: psycopg.AsyncConnection, notified: list) -> None:
        ranges: list[tuple[int, int]] = []
        reload_grids = False
        for notification in notified:
            message = json.loads(notification.payload)
            kind = message["kind"]
            if notification.channel == AUTH_CHANNEL:
                if kind == "token":
                    self.hub.end_token(message["token_id"])
                elif kind == "session":
                    self.hub.end_session(message["session_id"])
                else:
                    self.hub.end_user(message["user_id"])
            elif kind == "incidents":
                ranges.append((message["first"], message["last"]))
            elif kind == "grids":
                reload_grids = True
        if reload_grids:
            # Grid members may have changed: an inspector's scope is the grids they hold.
            await self._load_grid_boxes(conn)
            inspectors = sorted({s.user.id for s in self.hub.streams() if s.user.role == "inspector"})
            if inspectors:
                self.hub.rescope(await asyncio.to_thread(self.reload_users, inspectors))
        if ranges:
            cursor = await conn.execute(
                EVENTS_IN_RANGES_SQL, [[r[0] for r in ranges], [r[1] for r in ranges]]
            )
            await self._publish(conn, await cursor.fetchall())

    async def _publish(self, conn: psycopg.AsyncConnection, rows: list[dict]) -> None:
        if not rows:
            return
        self.last_event_id = max(self.last_event_id, rows[-1]["id"])
        if not len(self.hub):
            return
        departments = {}
        if self.hub.wants_departments():
            cursor = await conn.execute(DEPARTMENTS_SQL, [_incident_ids(rows)])
            departments = {row["id"]: row["department_id"] for row in await cursor.fetchall()}
        self.hub.publish(rows, [self.document(row) for row in rows], departments)

    async def beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.feed_heartbeat_s)
            self.hub.beat()

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, _app: web.Application) -> None:
        self.pool.open(wait=False)
        self._tasks = [asyncio.create_task(self.listen()), asyncio.create_task(self.beat())]

    async def stop(self, _app: web.Application) -> None:
        for stream in self.hub.streams():
            self.hub.remove(stream)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(self.pool.close)


# -- HTTP -------------------------------------------------------------------------------

FEED_KEY = web.AppKey("feed", Feed)


def _cors(request: web.Request) -> dict[str, str]:
    """Pages come from the workers' port (or an allowed origin); the feed answers them with
    credentials, so it names the origin, never '*'."""
    origin = request.headers.get("Origin")
    settings = request.app[SETTINGS_KEY]
    if not origin or not (same_host(origin, request.host) or origin in settings.feed_allowed_origins):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def _error(request: web.Request, error: GridwatchError) -> web.Response:
    return web.json_response(
        error.to_dict(language_of(request.headers.get("Accept-Language"))),
        status=error.status,
        headers=_cors(request),
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
    )


def _last_event_id(request: web.Request) -> int | None:
    for name in request.query:
        if name != "last_event_id":
            raise InvalidInput(f"unknown parameter {name!r}", field=name)
    text = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidInput("Last-Event-ID must be an event id", field="Last-Event-ID")
    return int(text)


async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: every created or changed incident in the caller's scope, with the tiles
    it touched. Resumes after ``Last-Event-ID`` from the change log."""
    feed: Feed = request.app[FEED_KEY]
    try:
        last_id = _last_event_id(request)
        viewer = await asyncio.to_thread(
            feed.authenticate, request.headers.get("Authorization"), request.cookies.get("session")
        )
        if viewer is None:
            raise Unauthorized(
                "请先登录 / log in or send 'Authorization: Bearer <token>'", field="Authorization"
            )
        if not LAYERS["incidents"].readable_by(viewer.user.role):
            raise Unauthorized("this role may not read incidents", field="Authorization")
        stream = Stream(
            user=viewer.user,
            scope=scope_of(viewer.user),
            token_id=viewer.token_id,
            session_id=viewer.session_id,
            ends_at=viewer.ends_at,
        )
        feed.hub.open(stream)
    except GridwatchError as error:
        return _error(request, error)
    try:
        # Subscribed before the backlog is read, so nothing falls between; what both hold is
        # written once: chunks up to the backlog's last id are skipped, and the first one past it
        # is cut to the events after it.
        written, missed = (
            await asyncio.to_thread(feed.resume, stream.scope, last_id) if last_id is not None else (0, b"")
        )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx: pass each event on at once
                **_cors(request),
            }
        )
        await response.prepare(request)
        await response.write(RETRY + missed)
        while True:
            item = await stream.next_chunk()
            if item is None:
                break
            last_id_in_chunk, chunk = item
            if last_id_in_chunk and written:  # not a heartbeat, and the backlog's end not yet passed
                if last_id_in_chunk <= written:
                    continue
                chunk, written = events_past(chunk, written), 0
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        feed.hub.remove(stream)


async def preflight(request: web.Request) -> web.Response:
    headers = _cors(request)
    if headers:
        headers |= {
            "Access-Control-Allow-Methods": "GET",
            "Access-Control-Allow-Headers": "Authorization, Last-Event-ID",
            "Access-Control-Max-Age": "600",
        }
    return web.Response(status=204, headers=headers)


async def health(request: web.Request) -> web.Response:
    feed: Feed = request.app[FEED_KEY]
    status = 200 if feed.listening else 503
    return web.json_response(
        {
            "status": "ok" if feed.listening else "starting",
            "streams": len(feed.hub),
            "last_event_id": feed.last_event_id,
        },
        status=status,
    )


def create_feed_app(settings: Settings) -> web.Application:
    app = web.Application()
    feed = Feed(settings)
    app[SETTINGS_KEY] = settings
    app[FEED_KEY] = feed
    app.router.add_get(EVENTS_PATH, events)
    app.router.add_route("OPTIONS", EVENTS_PATH, preflight)
    app.router.add_get("/health", health)
    app.on_startup.append(feed.start)
    app.on_cleanup.append(feed.stop)
    return app


def serve_feed(settings: Settings, *, host: str, port: int) -> None:
    """Run the feed until SIGINT or SIGTERM."""
    import resource

    # Each stream is a socket: allow as many as the system lets this process have.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [feed] %(levelname)s %(message)s")
    web.run_app(
        create_feed_app(settings),
        host=host,
        port=port,
        handler_cancellation=True,  # a client that leaves ends its coroutine at once
        access_log=None,
        print=None,
        shutdown_timeout=2.0,
    )
