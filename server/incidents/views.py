"""``/api/v1/incidents``: thin views over ``service``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from pydantic import Field
from werkzeug.exceptions import RequestEntityTooLarge

from server import clock, idempotency
from server.auth import require_user
from server.db import get_db
from server.errors import InvalidInput, body_too_large
from server.geojson import geojson_response
from server.http_input import comma_codes
from server.incidents import service, workflow
from server.incidents.photos import MAX_PHOTO_BYTES, MAX_PHOTOS, clean_photo
from server.openapi import IDEMPOTENCY_KEY, documented
from server.openapi_schemas import geojson_reply, ref
from server.pagination import CURSOR_DESCRIPTION, decode_cursor, encode_cursor, page_links
from server.schema import (
    CODE_LIST_PATTERN,
    BBox,
    BodyModel,
    Code,
    Flag,
    Integer,
    Moment,
    Number,
    QueryModel,
    Text,
    parse_body,
    parse_query,
)

blueprint = Blueprint("incidents", __name__, url_prefix="/api/v1")

MAX_PAGE = 1000
CURSOR_PURPOSE = "incidents"
_FEATURE_ONLY = ("lon", "lat")
PHOTOS = {
    "photos": {
        "type": "array",
        "maxItems": MAX_PHOTOS,
        "items": {"type": "string", "format": "binary"},
        "description": f"JPEG/PNG/WebP, at most {MAX_PHOTO_BYTES} bytes each; EXIF removed",
    }
}
BODY_MEDIA = ("application/json", "multipart/form-data")
STATUS = "|".join(workflow.STATUSES)


@blueprint.errorhandler(RequestEntityTooLarge)
def _body_too_large(error: RequestEntityTooLarge):
    refusal = body_too_large(current_app.config["MAX_CONTENT_LENGTH"])
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


class IncidentsQuery(QueryModel):
    bbox: BBox | None = Field(None, description="Only incidents in this box")
    grid: Code | None = Field(None, description="Only incidents in this grid or below it")
    category: str | None = Field(
        None,
        pattern=CODE_LIST_PATTERN,
        description="Category codes, comma-separated",
    )
    status: str | None = Field(
        None,
        pattern=f"^({STATUS})(,({STATUS})){{0,{len(workflow.STATUSES) - 1}}}$",
        description="Statuses, comma-separated: " + ", ".join(workflow.STATUSES),
    )
    reported_after: Moment | None = Field(None, description="Reported at or after (ISO 8601 with offset)")
    reported_before: Moment | None = Field(None, description="Reported before (ISO 8601 with offset)")
    overdue: Flag | None = Field(None, description="Overdue or not")
    # "me" only: the phone page lists its own reports; nobody needs to filter by others yet.
    reporter: Literal["me"] | None = Field(None, description="Only what the caller filed")
    limit: Integer = Field(100, ge=1, le=MAX_PAGE, description="Page size")
    cursor: Text | None = Field(None, max_length=2000, description=CURSOR_DESCRIPTION)


class FilingInput(BodyModel):
    """``POST /api/v1/incidents``: a report (photos come beside it in multipart/form-data)."""

    lon: Number = Field(ge=-180, le=180)
    lat: Number = Field(ge=-90, le=90)
    crs: Literal[service.CRS_OPTIONS] = "wgs84"
    category: Text = Field(min_length=1, max_length=40, description="A category code (GET /categories)")
    description: Text = Field("", max_length=4000)
    accuracy_m: Number | None = Field(None, ge=0, le=99_999, description="The GPS fix's accuracy, metres")
    priority: Literal[service.PRIORITIES] | None = None
    channel: Literal[service.CHANNELS] = Field("app", description="Operators only: how the report came in")
    reporter_name: Text | None = Field(None, max_length=100)
    reporter_phone: Text | None = Field(None, max_length=40)
    observed_at: Moment | None = Field(
        None,
        description="When the reporter saw it (a report queued offline): at most 5 minutes ahead of the"
        " server clock and at most 7 days old (else 422)",
    )


class ActionBody(BodyModel):
    """What a workflow action may carry; each action reads what it needs (docs/workflow.md)."""

    note: Text | None = Field(None, max_length=2000)
    department: Code | None = Field(None, description="dispatch: a department code")
    rating: Integer | None = Field(None, ge=1, le=5, description="rate: 1 to 5")
    due_at: Moment | None = Field(
        None,
        description="extend, resume: the new due time (default: extend by one more time limit of the"
        " category; resume: one time limit from now)",
    )
    duplicate_of: Integer | None = Field(None, ge=1, le=2**62, description="link_duplicate: the original")


# -- incidents ---------------------------------------------------------------------------------


@blueprint.get("/incidents")
@documented(
    summary="Incidents the caller may see, newest first; cursor paging via links[rel=next]",
    query=IncidentsQuery,
    responses={200: geojson_reply(ref("IncidentCollection"))},
)
def list_incidents():
    user = require_user()
    query = parse_query(IncidentsQuery)
    where = service.IncidentFilter(
        bbox=query.bbox,
        grid=query.grid,
        categories=comma_codes(query.category, field="category"),
        statuses=comma_codes(query.status, options=workflow.STATUSES, field="status"),
        reported_after=query.reported_after,
        reported_before=query.reported_before,
        overdue=query.overdue,
        reporter_id=user.id if query.reporter == "me" else None,
    )
    after = decode_cursor(query.cursor, purpose=CURSOR_PURPOSE, length=2)
    after_key = None
    if after is not None:
        try:
            after_key = (datetime.fromisoformat(after[0]), int(after[1]))
        except (TypeError, ValueError) as error:
            raise InvalidInput("the cursor is not valid", field="cursor") from error
    with get_db().read_connection() as conn:
        rows, next_key = service.list_incidents(
            conn, user=user, now=clock.now(), where=where, limit=query.limit, after=after_key
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
@documented(
    summary="One incident with its event log, photos and the actions the caller may take now",
    responses={200: geojson_reply(ref("Incident"))},
    errors=(404,),
)
def get_incident(incident_id: int):
    user = require_user()
    with get_db().connection() as conn:
        incident = service.get_incident(conn, user=user, incident_id=incident_id, now=clock.now())
    return geojson_response(as_feature(incident))


@blueprint.get("/incidents/<int:incident_id>/photos/<int:photo_id>")
@documented(
    summary="A photo (EXIF removed)",
    responses={
        200: {
            "description": "the image",
            "content": {t: {} for t in ("image/jpeg", "image/png", "image/webp")},
        }
    },
    errors=(404,),
)
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
@documented(
    summary="File an incident (JSON, or multipart with photos under 'photos')",
    body=FilingInput,
    body_media=BODY_MEDIA,
    files=PHOTOS,
    headers=(IDEMPOTENCY_KEY,),
    responses={
        201: geojson_reply(ref("FiledIncident"), "Filed"),
        200: geojson_reply(ref("FiledIncident"), "An earlier filing with the same Idempotency-Key"),
    },
    errors=(403, 409, 413),
)
def file_incident():
    user = require_user()
    given = parse_body(FilingInput, files=("photos",))
    filing = service.Filing(**given.model_dump(), photos=_photos())
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
@documented(
    summary="Take a workflow action (see docs/workflow.md)",
    body=ActionBody,
    body_required=False,
    body_media=BODY_MEDIA,
    files=PHOTOS,
    path={"action": {"type": "string", "enum": list(workflow.TRANSITIONS)}},
    responses={200: geojson_reply(ref("Incident"))},
    errors=(403, 404, 409, 413),
)
def perform(incident_id: int, action: str):
    user = require_user()
    given = service.ActionInput(
        **parse_body(ActionBody, files=("photos",), optional=True).model_dump(), photos=_photos()
    )
    with get_db().connection() as conn:
        incident = service.perform(
            conn, user=user, incident_id=incident_id, action=action, now=clock.now(), given=given
        )
    return geojson_response(as_feature(incident))
