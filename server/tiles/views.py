"""Tile endpoints (/tiles/...). Thin: parsing in params, SQL in the tiles schema, caching in
cache, invalidation in changes."""

from __future__ import annotations

import os

from flask import Blueprint, Response, jsonify, request, url_for

from layers.catalog import LAYERS, PUBLIC, Layer
from server.auth import current_user, share_answer
from server.auth.scope import SEES_ALL, Scope, scope_of
from server.db import get_db
from server.errors import Forbidden, Unauthorized
from server.tiles.build import build_tile
from server.tiles.params import parse_filters, parse_layers, parse_zxy
from server.tiles.service import get_service

blueprint = Blueprint("tiles", __name__)


def request_viewer() -> tuple[str, Scope]:
    """The caller's role and scope (anonymous callers read only public layers)."""
    user = current_user()
    if user is None:
        return PUBLIC, SEES_ALL
    return user.role, scope_of(user)


def request_role() -> str:
    return request_viewer()[0]


def view_key(layers: tuple[Layer, ...], role: str, scope: Scope) -> tuple:
    """What a tile's bytes depend on beside z/x/y and filters: the fields the role may read and,
    where a layer lists incidents one by one, the scope. Never the user: an operator and a leader
    read the same fields of everything, so they share one cached tile."""
    fields = tuple(tuple(layer.fields_for(role)) for layer in layers)
    return fields, scope.key if any(layer.scoped for layer in layers) else None


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
    role, scope = request_viewer()
    check_readable(layers, role)
    service = get_service()
    key = (
        tuple(layer.name for layer in layers),
        zoom,
        column,
        row,
        filters.canonical(),
        view_key(layers, role, scope),
    )
    max_ages = [layer.max_age for layer in layers if layer.max_age is not None]

    def build() -> bytes:
        with get_db().read_connection() as conn:
            return build_tile(
                conn, layers=layers, z=zoom, x=column, y=row, filters=filters, role=role, scope=scope
            )

    entry, cached = service.tile(key, build, min(max_ages) if max_ages else None)
    headers = {
        "X-Tile-Cache": "hit" if cached else "miss",
        # Which worker process answered: each holds its own cache (tests, debugging).
        "X-Tile-Worker": str(os.getpid()),
        "ETag": f'"{entry.etag}"',
        "Cache-Control": _cache_control(role),
        "Vary": "Accept-Encoding, Authorization, Cookie",
        # For nginx's shared tile cache (deploy/nginx): keep the tile but as expired since 1970,
        # so every use is revalidated here with the caller's credentials. nginx never passes it on.
        "X-Accel-Expires": "@1",
    }
    share_answer()
    # Weak comparison (RFC 9110): nginx's gzip turns the ETag it passes on into W/"…".
    if request.if_none_match.contains_weak(entry.etag):
        return Response(status=304, headers=headers)
    if not entry.raw:
        return Response(status=204, headers=headers)
    body = entry.raw
    if "gzip" in request.accept_encodings:
        body = service.cache.account_gzip(key, entry)
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers, mimetype="application/vnd.mapbox-vector-tile")
