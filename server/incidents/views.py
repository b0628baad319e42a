"""``/api/v1/incidents``: thin views over ``service``."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from server import clock, http_input, idempotency
from server.auth import require_user
from server.db import get_db
from server.errors import InvalidInput, PayloadTooLarge
from server.geojson import geojson_response
from server.incidents import service, workflow
from server.incidents.photos import MAX_PHOTO_BYTES, MAX_PHOTOS, clean_photo
from server.pagination import decode_cursor, encode_cursor, page_links

blueprint = Blueprint("incidents", __name__, url_prefix="/api/v1")

MAX_PAGE = 1000
CURSOR_PURPOSE = "incidents"
_FEATURE_ONLY = ("lon", "lat")
REPORTER_OPTIONS = ("me",)


@blueprint.errorhandler(RequestEntityTooLarge)
def _body_too_large(error: RequestEntityTooLarge):
    limit = current_app.config["MAX_CONTENT_LENGTH"] // 1024 // 1024
    refusal = PayloadTooLarge(f"the request body may have at most {limit} MiB", field="body")
    return jsonify(refusal.to_dict()), refusal.status


def _json_ready(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    return value


def as_feature(incident: dict) -> dict:
    properties = {key: value for key, value in incident.items() if key not in _FEATURE_ONLY}
    if "photos" in properties:
        properties["photos"] = [
            {**photo, "href": url_for("incidents.photo", incident_id=incident["id"], photo_id=photo["id"])}
            for photo in properties["photos"]
        ]
    return {
        "type": "Feature",
        "id": incident["id"],
        "geometry": {"type": "Point", "coordinates": [incident["lon"], incident["lat"]]},
        "properties": _json_ready(properties),
    }


def _photos(limit: int = MAX_PHOTOS) -> tuple:
    files = request.files.getlist("photos")
    if len(files) > limit:
        raise InvalidInput(f"最多 {limit} 张照片 / at most {limit} photos", field="photos")
    photos = []
    for upload in files:
        raw = upload.stream.read(MAX_PHOTO_BYTES + 1)
        photos.append(clean_photo(raw, field="photos"))
    return tuple(photos)


# -- incidents ---------------------------------------------------------------------------------


@blueprint.get("/incidents")
def list_incidents():
    user = require_user()
    args = http_input.query_args()
    where = service.IncidentFilter(
        bbox=http_input.bbox(args),
        grid=http_input.code(args, "grid"),
        categories=http_input.codes(args, "category", pattern=r"^[a-z0-9_]{2,40}$"),
        statuses=http_input.codes(args, "status", options=workflow.STATUSES),
        reported_after=http_input.timestamp(args, "reported_after"),
        reported_before=http_input.timestamp(args, "reported_before"),
        overdue=http_input.boolean(args, "overdue"),
        # "me" only: the phone page lists its own reports; nobody needs to filter by others yet.
        reporter_id=user.id if http_input.choice(args, "reporter", REPORTER_OPTIONS) else None,
    )
    limit = http_input.integer(args, "limit", minimum=1, maximum=MAX_PAGE) or 100
    after = decode_cursor(args.get("cursor"), purpose=CURSOR_PURPOSE, length=2)
    after_key = None
    if after is not None:
        try:
            after_key = (datetime.fromisoformat(after[0]), int(after[1]))
        except (TypeError, ValueError) as error:
            raise InvalidInput("the cursor is not valid", field="cursor") from error
    with get_db().connection() as conn:
        rows, next_key = service.list_incidents(
            conn, user=user, now=clock.now(), where=where, limit=limit, after=after_key
        )
    next_cursor = (
        encode_cursor([next_key[0].isoformat(), next_key[1]], purpose=CURSOR_PURPOSE) if next_key else None
    )
    body = {
        "type": "FeatureCollection",
        "features": [as_feature(row) for row in rows],
        "numberReturned": len(rows),
        "links": page_links("incidents.list_incidents", next_cursor),
    }
    return geojson_response(body)


@blueprint.get("/incidents/<int:incident_id>")
def get_incident(incident_id: int):
    user = require_user()
    with get_db().connection() as conn:
        incident = service.get_incident(conn, user=user, incident_id=incident_id, now=clock.now())
    return geojson_response(as_feature(incident))


@blueprint.get("/incidents/<int:incident_id>/photos/<int:photo_id>")
def photo(incident_id: int, photo_id: int):
    user = require_user()
    with get_db().connection() as conn:
        found = service.get_photo(
            conn, user=user, incident_id=incident_id, photo_id=photo_id, now=clock.now()
        )
    response = Response(bytes(found["content"]), mimetype=found["content_type"])
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.post("/incidents")
def file_incident():
    user = require_user()
    data = http_input.body_fields()
    filing = service.Filing(
        lon=http_input.number(data, "lon", required=True, minimum=-180, maximum=180),
        lat=http_input.number(data, "lat", required=True, minimum=-90, maximum=90),
        category=http_input.text(data, "category", required=True, max_length=40),
        description=http_input.text(data, "description", max_length=4000) or "",
        accuracy_m=http_input.number(data, "accuracy_m", minimum=0, maximum=99_999),
        crs=http_input.choice(data, "crs", service.CRS_OPTIONS) or "wgs84",
        channel=http_input.choice(data, "channel", service.CHANNELS) or "app",
        priority=http_input.choice(data, "priority", service.PRIORITIES),
        reporter_name=http_input.text(data, "reporter_name", max_length=100),
        reporter_phone=http_input.text(data, "reporter_phone", max_length=40),
        observed_at=http_input.timestamp(data, "observed_at"),
        photos=_photos(),
    )
    key = idempotency.key_from_request()
    with get_db().connection() as conn:
        result = service.file_incident(conn, user=user, filing=filing, now=clock.now(), idempotency_key=key)
    body = as_feature(result.incident)
    body["possible_duplicates"] = _json_ready(result.possible_duplicates)
    body["photo_locations"] = result.photo_locations
    response = geojson_response(body, 200 if result.replayed else 201)
    response.headers["Location"] = url_for("incidents.get_incident", incident_id=result.incident["id"])
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@blueprint.post("/incidents/<int:incident_id>/actions/<action>")
def perform(incident_id: int, action: str):
    user = require_user()
    data = http_input.body_fields() if request.content_length or request.mimetype else {}
    given = service.ActionInput(
        note=http_input.text(data, "note", max_length=2000),
        department=http_input.text(data, "department", max_length=40),
        rating=http_input.integer(data, "rating", minimum=1, maximum=5),
        due_at=http_input.timestamp(data, "due_at"),
        duplicate_of=http_input.integer(data, "duplicate_of", minimum=1, maximum=2**62),
        photos=_photos(),
    )
    with get_db().connection() as conn:
        incident = service.perform(
            conn, user=user, incident_id=incident_id, action=action, now=clock.now(), given=given
        )
    return geojson_response(as_feature(incident))
