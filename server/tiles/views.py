"""Tile endpoints (/tiles/...) and the live change feed (/api/v1/events). Thin: parsing in
params, SQL in the tiles schema, caching in cache, invalidation in changes."""

from __future__ import annotations

import json
import os
import queue
import time

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context, url_for

from layers.catalog import LAYERS, PUBLIC, Layer
from server.db import get_db
from server.errors import Forbidden, InvalidInput, Unauthorized
from server.tiles.build import build_tile
from server.tiles.changes import event_document, events_after
from server.tiles.params import parse_filters, parse_layers, parse_zxy
from server.tiles.service import TileService, get_service

blueprint = Blueprint("tiles", __name__)
SSE_HEARTBEAT_S = 15.0
SSE_BACKFILL_LIMIT = 1000


def request_role() -> str:
    from server.auth import current_user  # the auth package is optional for the tile layer

    user = current_user()
    return user.role if user is not None else PUBLIC


def check_readable(layers: tuple[Layer, ...], role: str) -> None:
    for layer in layers:
        if not layer.readable_by(role):
            if role == PUBLIC:
                raise Unauthorized(f"log in to read the {layer.name} layer / 请先登录", field="layer")
            raise Forbidden(f"the {role} role may not read the {layer.name} layer", field="layer")


def _cache_control(role: str) -> str:
    # Tiles change when incidents do: clients revalidate every time (a 304 is cheap).
    return ("public" if role == PUBLIC else "private") + ", no-cache"


@blueprint.get("/tiles/index.json")
def index():
    role = request_role()
    return jsonify(
        [
            {
                "name": layer.name,
                "title": {"zh": layer.title_zh, "en": layer.title_en},
                "description": layer.description,
                "geometry": layer.geometry,
                "minzoom": layer.minzoom,
                "maxzoom": layer.maxzoom,
                "filters": list(layer.filters),
                "tilejson": url_for("tiles.tilejson", names=layer.name, _external=True),
            }
            for layer in LAYERS.values()
            if layer.readable_by(role)
        ]
    )


@blueprint.get("/tiles/<names>.json")
def tilejson(names: str):
    layers = parse_layers(names)
    role = request_role()
    check_readable(layers, role)
    tiles_url = request.host_url.rstrip("/") + f"/tiles/{names}/{{z}}/{{x}}/{{y}}.mvt"
    document = {
        "tilejson": "3.0.0",
        "name": names,
        "description": " / ".join(layer.description for layer in layers),
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": min(layer.minzoom for layer in layers),
        "maxzoom": max(layer.maxzoom for layer in layers),
        "bounds": [-180, -85.051129, 180, 85.051129],
        "vector_layers": [
            {
                "id": layer.name,
                "description": layer.description,
                "minzoom": layer.minzoom,
                "maxzoom": layer.maxzoom,
                "fields": {name: field.type for name, field in layer.fields_for(role).items()},
            }
            for layer in layers
        ],
    }
    response = jsonify(document)
    response.headers["Cache-Control"] = _cache_control(role)
    return response


@blueprint.get("/tiles/<names>/<z>/<x>/<y>.mvt")
def tile(names: str, z: str, x: str, y: str):
    layers = parse_layers(names)
    zoom, column, row = parse_zxy(z, x, y)
    filters = parse_filters(request.args, layers)
    role = request_role()
    check_readable(layers, role)
    service = get_service()
    key = (tuple(layer.name for layer in layers), zoom, column, row, filters.canonical(), role)
    max_ages = [layer.max_age for layer in layers if layer.max_age is not None]

    def build() -> bytes:
        with get_db().connection() as conn:
            return build_tile(conn, layers=layers, z=zoom, x=column, y=row, filters=filters, role=role)

    entry, cached = service.tile(key, build, min(max_ages) if max_ages else None)
    headers = {
        "X-Tile-Cache": "hit" if cached else "miss",
        # Which worker process answered: each holds its own cache (tests, debugging).
        "X-Tile-Worker": str(os.getpid()),
        "ETag": f'"{entry.etag}"',
        "Cache-Control": _cache_control(role),
        "Vary": "Accept-Encoding, Authorization, Cookie",
    }
    if request.if_none_match.contains(entry.etag):
        return Response(status=304, headers=headers)
    if not entry.raw:
        return Response(status=204, headers=headers)
    body = entry.raw
    if "gzip" in request.accept_encodings:
        body = service.cache.account_gzip(key, entry)
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers, mimetype="application/vnd.mapbox-vector-tile")


def _last_event_id() -> int | None:
    text = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    if text is None:
        return None
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput("Last-Event-ID must be an event id", field="Last-Event-ID")
    return int(text)


def _sse(document: dict) -> str:
    return f"id: {document['id']}\nevent: incident\ndata: {json.dumps(document, ensure_ascii=False)}\n\n"


@blueprint.get("/api/v1/events")
def events():
    """Server-Sent Events: every created or changed incident with the tiles it touched."""
    for name in request.args:
        if name != "last_event_id":
            raise InvalidInput(f"unknown parameter {name!r}", field=name)
    last_id = _last_event_id()
    role = request_role()
    check_readable((LAYERS["incidents"],), role)
    service = get_service()
    service.listener.ensure_started()
    subscriber = service.hub.subscribe()
    backlog = []
    if last_id is not None:
        with get_db().connection() as conn:
            rows = events_after(conn, after=last_id, limit=SSE_BACKFILL_LIMIT)
        backlog = [event_document(row, service.listener.grid_boxes) for row in rows]
    return Response(
        stream_with_context(_stream(service, subscriber, backlog)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _stream(service: TileService, subscriber: queue.Queue, backlog: list[dict]):
    sent = {document["id"] for document in backlog}
    try:
        yield "retry: 2000\n\n"
        for document in backlog:
            yield _sse(document)
        last_beat = time.monotonic()
        while not service.closed():
            try:
                document = subscriber.get(timeout=1.0)
            except queue.Empty:
                if time.monotonic() - last_beat >= SSE_HEARTBEAT_S:
                    last_beat = time.monotonic()
                    yield ": keep-alive\n\n"
                continue
            if document["id"] not in sent:
                yield _sse(document)
    finally:
        service.hub.unsubscribe(subscriber)
        current_app.logger.debug("event stream closed")
