"""The OpenAPI 3 description of ``/api/v1`` (hand-written beside the views it describes; the
schemathesis run in the tests checks that responses match it) and a local docs page."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from server.admin.service import TIME_LIMIT_UNITS
from server.analytics import spot_views
from server.analytics import views as analytics_views
from server.incidents import service, workflow
from server.incidents.photos import MAX_PHOTO_BYTES, MAX_PHOTOS
from server.leader_report import views as leader_report_views
from server.openapi_page import DOCS_PAGE
from server.patrols import views as patrol_views

blueprint = Blueprint("openapi", __name__, url_prefix="/api/v1")


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


def _errors(*codes: int) -> dict:
    return {str(code): {"$ref": f"#/components/responses/E{code}"} for code in codes}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _geojson(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/geo+json": {"schema": schema}}}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_STRING = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_CODE = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"}
_BBOX = {
    "type": "string",
    "description": "minlon,minlat,maxlon,maxlat (WGS84)",
    "example": "103.3,29.85,103.4,29.95",
}
_CURSOR = _query("cursor", _STRING, "Opaque cursor from a 'next' link; do not build one.")

_LINK = {
    "type": "object",
    "required": ["rel", "href"],
    "properties": {"rel": _STRING, "type": _STRING, "href": _STRING},
}

_EVENT = {
    "type": "object",
    "required": ["id", "at", "action"],
    "properties": {
        "id": {"type": "integer"},
        "at": _TIME,
        "action": _STRING,
        "from_status": _nullable(_STRING),
        "to_status": _nullable(_STRING),
        "note": _nullable(_STRING),
        "data": _nullable({"type": "object"}),
        "actor": _nullable(_STRING),
        "actor_name": _nullable(_STRING),
        "actor_role": _nullable(_STRING),
    },
}

_INCIDENT_PROPERTIES = {
    "type": "object",
    "required": ["id", "status", "category", "grid", "reported_at", "handling_level"],
    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": list(workflow.STATUSES)},
        "category": _STRING,
        "category_name_zh": _STRING,
        "category_name_en": _STRING,
        "grid": _STRING,
        "grid_name_zh": _STRING,
        "accuracy_m": _nullable({"type": "number"}),
        "description": _STRING,
        "channel": {"type": "string", "enum": list(service.CHANNELS)},
        "priority": {"type": "string", "enum": list(service.PRIORITIES)},
        "department": _nullable(_STRING),
        "handling_level": {"type": "string", "enum": list(workflow.HANDLING_LEVELS)},
        "self_handled": {"type": "boolean"},
        "rework_count": {"type": "integer"},
        "extension_count": {"type": "integer"},
        "duplicate_of": _nullable({"type": "integer"}),
        "reporter_id": _nullable({"type": "integer"}),
        "reporter_name": _nullable({"type": "string", "description": "operators and admins only"}),
        "reporter_phone": _nullable({"type": "string", "description": "operators and admins only"}),
        **{
            column: _nullable(_TIME)
            for column in (
                "accepted_at",
                "rejected_at",
                "dispatched_at",
                "due_at",
                "registered_at",
                "resolved_at",
                "verified_at",
                "closed_at",
                "rated_at",
            )
        },
        "reported_at": {**_TIME, "description": "when the report arrived"},
        "observed_at": _nullable({**_TIME, "description": "when the reporter saw it, if given"}),
        "updated_at": _TIME,
        "rating": _nullable({"type": "integer", "minimum": 1, "maximum": 5}),
        "overdue": {"type": "boolean"},
        "warning": _nullable({"type": "string", "enum": ["green", "yellow", "red"]}),
        "events": {"type": "array", "items": _EVENT, "description": "one incident only"},
        "photos": {"type": "array", "items": {"type": "object"}, "description": "one incident only"},
        "allowed_actions": {
            "type": "array",
            "items": {"type": "string", "enum": list(workflow.TRANSITIONS)},
            "description": "one incident only: what the caller may do now",
        },
    },
}

_POINT = {
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"type": "string", "enum": ["Point"]},
        "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    },
}

_FILING_FIELDS = {
    "type": "object",
    "required": ["lon", "lat", "category"],
    "properties": {
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "crs": {"type": "string", "enum": list(service.CRS_OPTIONS), "default": "wgs84"},
        "category": {"type": "string", "description": "a category code (GET /categories)"},
        "description": {"type": "string", "maxLength": 4000},
        "accuracy_m": {"type": "number", "minimum": 0, "maximum": 99999},
        "priority": {"type": "string", "enum": list(service.PRIORITIES)},
        "channel": {"type": "string", "enum": list(service.CHANNELS), "description": "operators only"},
        "reporter_name": {"type": "string", "maxLength": 100},
        "reporter_phone": {"type": "string", "maxLength": 40},
        "observed_at": {
            "type": "string",
            "format": "date-time",
            "description": "When the reporter saw it (a report queued offline), ISO 8601 with offset;"
            " at most 5 minutes ahead of the server clock and at most 7 days old (else 422)",
        },
    },
}

_ACTION_FIELDS = {
    "type": "object",
    "properties": {
        "note": {"type": "string", "maxLength": 2000},
        "department": {"type": "string", "description": "dispatch: a department code"},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "due_at": {
            "type": "string",
            "format": "date-time",
            "description": "extend, resume: the new due time (default: extend by one more time limit of the"
            " category; resume: one time limit from now)",
        },
        "duplicate_of": {"type": "integer", "minimum": 1},
    },
}

_GRID_PROPERTIES = {
    "type": "object",
    "required": ["code", "level", "name_zh"],
    "properties": {
        "code": _STRING,
        "level": {"type": "string", "enum": ["county", "township", "village", "grid", "microgrid"]},
        "parent": _nullable(_STRING),
        "name_zh": _STRING,
        "name_en": _nullable(_STRING),
        "households": _nullable({"type": "integer"}),
        "population": _nullable({"type": "integer"}),
        "has_member": {"type": "boolean"},
        "member_name": _nullable(_STRING),
        "ancestors": {"type": "array", "items": {"type": "object"}, "description": "one grid only"},
        "kpis": {"type": "object", "description": "one grid only"},
    },
}


_TIME_LIMIT_UNIT = {
    "type": "string",
    "enum": list(TIME_LIMIT_UNITS),
    "description": "calendar: time_limit_s of clock time; working: of the work calendar's working hours"
    " (one working day = 7 h of the default calendar)",
}

_PERIODS = {
    "type": "array",
    "minItems": 1,
    "maxItems": 6,
    "items": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$"},
    "description": "Working periods of a working day, local time, e.g. ['08:30-12:00', '14:00-17:30']",
}
_WEEKDAYS = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "integer", "minimum": 1, "maximum": 7},
    "description": "ISO day numbers, 1 = Monday ... 7 = Sunday",
}
_CALENDAR_DAY = {
    "type": "object",
    "required": ["date", "working", "name"],
    "properties": {
        "date": {"type": "string", "format": "date"},
        "working": {"type": "boolean", "description": "false: a holiday; true: a weekend day worked (调休)"},
        "name": _STRING,
    },
}
_WORK_CALENDAR = {
    "type": "object",
    "required": ["time_zone", "working_weekdays", "working_hours", "days"],
    "properties": {
        "time_zone": _STRING,
        "working_weekdays": _WEEKDAYS,
        "working_hours": _PERIODS,
        "days": {"type": "array", "items": _CALENDAR_DAY},
    },
}

_CATEGORY_CHANGES = {
    "type": "object",
    "properties": {
        "name_zh": {"type": "string", "maxLength": 100},
        "name_en": {"type": "string", "maxLength": 100},
        "time_limit_s": {"type": "integer", "minimum": 60, "maximum": 90 * 86400},
        "time_limit_unit": _TIME_LIMIT_UNIT,
        "default_department": {"type": "string", "nullable": True},
        "default_priority": {"type": "string", "enum": list(service.PRIORITIES)},
        "duplicate_radius_m": {"type": "integer", "minimum": 1, "maximum": 10000},
        "duplicate_window_s": {"type": "integer", "minimum": 60, "maximum": 90 * 86400},
        "active": {"type": "boolean"},
    },
}

_CATEGORY = {
    "type": "object",
    "required": ["code", "name_zh", "name_en", "time_limit_s", "default_priority", "active"],
    "properties": {
        "code": _STRING,
        "name_zh": _STRING,
        "name_en": _STRING,
        "group": _STRING,
        "time_limit_s": {"type": "integer"},
        "time_limit_unit": _TIME_LIMIT_UNIT,
        "default_department": _nullable(_STRING),
        "default_priority": {"type": "string", "enum": list(service.PRIORITIES)},
        "duplicate_radius_m": {"type": "integer"},
        "duplicate_window_s": {"type": "integer"},
        "active": {"type": "boolean"},
    },
}

_TOKEN = {
    "type": "object",
    "required": ["id", "label", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "label": _STRING,
        "created_at": _TIME,
        "last_used_at": _nullable(_TIME),
        "revoked_at": _nullable(_TIME),
    },
}

_ROLES = ["inspector", "operator", "department", "leader", "admin"]

_NEW_USER = {
    "type": "object",
    "required": ["username", "role"],
    "properties": {
        "username": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{2,64}$"},
        "role": {"type": "string", "enum": _ROLES},
        "display_name": {"type": "string", "maxLength": 100},
        "department": {"type": "string", "description": "department handlers: a department code"},
        "grid": {"type": "string", "description": "inspectors: a grid code they walk"},
        "password": {"type": "string"},
    },
}

_USER_RECORD = {
    "type": "object",
    "required": ["id", "username", "role", "active", "grids"],
    "properties": {
        "id": {"type": "integer"},
        "username": _STRING,
        "display_name": _STRING,
        "role": {"type": "string", "enum": _ROLES},
        "department": _nullable(_STRING),
        "active": {"type": "boolean"},
        "has_password": {"type": "boolean"},
        "grids": {"type": "array", "items": _STRING},
    },
}


def _feature(properties: dict, geometry: dict, id_schema: dict) -> dict:
    return {
        "type": "object",
        "required": ["type", "id", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": id_schema,
            "geometry": geometry,
            "properties": properties,
        },
    }


def _collection(feature: str) -> dict:
    return {
        "type": "object",
        "required": ["type", "features", "numberReturned", "links"],
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {"type": "array", "items": _ref(feature)},
            "numberReturned": {"type": "integer"},
            "links": {"type": "array", "items": _LINK},
        },
    }


def build_document() -> dict:
    incident_id = {"name": "incident_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    secured = [{"bearer": []}, {"session": []}]
    paths = {
        "/auth/login": {
            "post": {
                "summary": "Log in with a password: sets the session cookie and returns a CSRF token",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        media: {
                            "schema": {
                                "type": "object",
                                "required": ["username", "password"],
                                "properties": {"username": _STRING, "password": _STRING},
                            }
                        }
                        for media in ("application/json", "application/x-www-form-urlencoded")
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["user", "csrf_token"],
                            "properties": {"user": _ref("Me"), "csrf_token": _STRING},
                        }
                    ),
                    **_errors(400, 401, 429),
                },
            }
        },
        "/auth/logout": {
            "post": {"summary": "End the session", "responses": {"204": {"description": "done"}}}
        },
        "/auth/tokens": {
            "post": {
                "summary": "A new API token for the caller (shown once)",
                "security": secured,
                "responses": {
                    "201": _json({"type": "object", "required": ["token"], "properties": {"token": _STRING}}),
                    **_errors(400, 401, 403),
                },
            },
            "get": {
                "summary": "The caller's tokens (without secrets)",
                "security": secured,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["tokens"],
                            "properties": {"tokens": {"type": "array", "items": _TOKEN}},
                        }
                    ),
                    **_errors(401),
                },
            },
        },
        "/auth/tokens/{token_id}": {
            "delete": {
                "summary": "Revoke one of the caller's tokens (a lost phone)",
                "security": secured,
                "parameters": [
                    {"name": "token_id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {"204": {"description": "revoked"}, **_errors(401, 403, 404)},
            }
        },
        "/users/me": {
            "get": {
                "summary": "The caller, with department and the grids they hold",
                "security": secured,
                "responses": {"200": _json(_ref("Me")), **_errors(401)},
            }
        },
        "/grids": {
            "get": {
                "summary": "Grids as GeoJSON, ordered by code",
                "security": secured,
                "parameters": [
                    _query(
                        "level",
                        {"type": "string", "enum": list(_GRID_PROPERTIES["properties"]["level"]["enum"])},
                        "Only this level",
                    ),
                    _query("parent", _CODE, "Only the children of this grid code"),
                    _query("bbox", _BBOX, "Only grids intersecting this box"),
                    _query(
                        "simplify",
                        {"type": "number", "minimum": 1e-7, "maximum": 0.1},
                        "Simplify geometry (degrees)",
                    ),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 5000, "default": 1000},
                        "Page size",
                    ),
                    _CURSOR,
                ],
                "responses": {"200": _geojson(_collection("Grid")), **_errors(400, 401)},
            }
        },
        "/grids/{code}": {
            "get": {
                "summary": "One grid with its ancestors and KPIs (over it and everything below it)",
                "security": secured,
                "parameters": [
                    {"name": "code", "in": "path", "required": True, "schema": _STRING},
                    _query(
                        "simplify", {"type": "number", "minimum": 1e-7, "maximum": 0.1}, "Simplify geometry"
                    ),
                ],
                "responses": {"200": _geojson(_ref("Grid")), **_errors(400, 401, 404)},
            }
        },
        "/categories": {
            "get": {
                "summary": "Incident categories with time limits and default departments",
                "security": secured,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["categories"],
                            "properties": {"categories": {"type": "array", "items": _ref("Category")}},
                        }
                    ),
                    **_errors(401),
                },
            }
        },
        "/categories/{code}": {
            "patch": {
                "summary": "Change a category's settings (admins); new time limits apply to later dispatches",
                "security": secured,
                "parameters": [{"name": "code", "in": "path", "required": True, "schema": _STRING}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _CATEGORY_CHANGES}},
                },
                "responses": {"200": _json(_ref("Category")), **_errors(400, 401, 403, 404, 422)},
            }
        },
        "/users": {
            "get": {
                "summary": "All users (admins)",
                "security": secured,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["users"],
                            "properties": {"users": {"type": "array", "items": _ref("UserRecord")}},
                        }
                    ),
                    **_errors(401, 403),
                },
            },
            "post": {
                "summary": "Add a user (admins); returns a new API token, shown once",
                "security": secured,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _NEW_USER}}},
                "responses": {
                    "201": _json(
                        {
                            "type": "object",
                            "required": ["user", "token"],
                            "properties": {"user": {"type": "object"}, "token": _STRING},
                        }
                    ),
                    **_errors(400, 401, 403, 404, 409),
                },
            },
        },
        "/users/{username}": {
            "patch": {
                "summary": "Activate or deactivate a user (admins)",
                "security": secured,
                "parameters": [{"name": "username", "in": "path", "required": True, "schema": _STRING}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"active": {"type": "boolean"}}}
                        }
                    },
                },
                "responses": {"200": _json(_ref("UserRecord")), **_errors(400, 401, 403, 404)},
            }
        },
        "/work-calendar": {
            "get": {
                "summary": "The work calendar that working-time limits count in: hours, weekdays, holidays",
                "security": secured,
                "responses": {"200": _json(_WORK_CALENDAR), **_errors(401)},
            },
            "patch": {
                "summary": "Change the time zone, working weekdays or working hours (admins); later due times"
                " use them",
                "security": secured,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "time_zone": {"type": "string", "example": "Asia/Shanghai"},
                                    "working_weekdays": _WEEKDAYS,
                                    "working_hours": _PERIODS,
                                },
                            }
                        }
                    },
                },
                "responses": {"200": _json(_WORK_CALENDAR), **_errors(400, 401, 403, 422)},
            },
        },
        "/work-calendar/days/{date}": {
            "put": {
                "summary": "Mark a date as a holiday or an adjusted working day (调休) (admins)",
                "security": secured,
                "parameters": [{"name": "date", "in": "path", "required": True, "schema": _STRING}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["working"],
                                "properties": {
                                    "working": {"type": "boolean"},
                                    "name": {"type": "string", "maxLength": 100},
                                },
                            }
                        }
                    },
                },
                "responses": {"200": _json(_CALENDAR_DAY), **_errors(400, 401, 403)},
            },
            "delete": {
                "summary": "Remove a date's entry: it follows the working weekdays again (admins)",
                "security": secured,
                "parameters": [{"name": "date", "in": "path", "required": True, "schema": _STRING}],
                "responses": {"204": {"description": "removed"}, **_errors(400, 401, 403, 404)},
            },
        },
        "/departments": {
            "get": {
                "summary": "Departments that handle dispatched incidents",
                "security": secured,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["departments"],
                            "properties": {"departments": {"type": "array", "items": {"type": "object"}}},
                        }
                    ),
                    **_errors(401),
                },
            }
        },
        "/incidents": {
            "get": {
                "summary": "Incidents the caller may see, newest first; cursor paging via links[rel=next]",
                "security": secured,
                "parameters": [
                    _query("bbox", _BBOX, "Only incidents in this box"),
                    _query("grid", _CODE, "Only incidents in this grid or below it"),
                    _query("category", _STRING, "Category codes, comma-separated"),
                    _query("status", _STRING, "Statuses, comma-separated: " + ", ".join(workflow.STATUSES)),
                    _query("reported_after", _TIME, "Reported at or after (ISO 8601 with offset)"),
                    _query("reported_before", _TIME, "Reported before (ISO 8601 with offset)"),
                    _query("overdue", {"type": "string", "enum": ["true", "false"]}, "Overdue or not"),
                    _query("reporter", {"type": "string", "enum": ["me"]}, "Only what the caller filed"),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                        "Page size",
                    ),
                    _CURSOR,
                ],
                "responses": {"200": _geojson(_collection("Incident")), **_errors(400, 401)},
            },
            "post": {
                "summary": "File an incident (JSON, or multipart with photos under 'photos')",
                "security": secured,
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        "description": "A retry with the same key returns the first incident (200)",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _FILING_FIELDS},
                        "multipart/form-data": {
                            "schema": {
                                **_FILING_FIELDS,
                                "properties": {
                                    **_FILING_FIELDS["properties"],
                                    "photos": {
                                        "type": "array",
                                        "maxItems": MAX_PHOTOS,
                                        "items": {"type": "string", "format": "binary"},
                                        "description": f"JPEG/PNG/WebP, at most {MAX_PHOTO_BYTES} bytes",
                                    },
                                },
                            }
                        },
                    },
                },
                "responses": {
                    "201": _geojson(_ref("FiledIncident"), "Filed"),
                    "200": _geojson(_ref("FiledIncident"), "An earlier filing with the same Idempotency-Key"),
                    **_errors(400, 401, 403, 409, 413, 422),
                },
            },
        },
        "/incidents/{incident_id}": {
            "get": {
                "summary": "One incident with its event log, photos and the actions the caller may take now",
                "security": secured,
                "parameters": [incident_id],
                "responses": {"200": _geojson(_ref("Incident")), **_errors(401, 404)},
            }
        },
        "/incidents/{incident_id}/photos/{photo_id}": {
            "get": {
                "summary": "A photo (EXIF removed)",
                "security": secured,
                "parameters": [
                    incident_id,
                    {"name": "photo_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                ],
                "responses": {
                    "200": {
                        "description": "the image",
                        "content": {t: {} for t in ("image/jpeg", "image/png", "image/webp")},
                    },
                    **_errors(401, 404),
                },
            }
        },
        "/incidents/{incident_id}/actions/{action}": {
            "post": {
                "summary": "Take a workflow action (see docs/workflow.md)",
                "security": secured,
                "parameters": [
                    incident_id,
                    {
                        "name": "action",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(workflow.TRANSITIONS)},
                    },
                ],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {"schema": _ACTION_FIELDS},
                        "multipart/form-data": {
                            "schema": {
                                **_ACTION_FIELDS,
                                "properties": {
                                    **_ACTION_FIELDS["properties"],
                                    "photos": {
                                        "type": "array",
                                        "items": {"type": "string", "format": "binary"},
                                    },
                                },
                            }
                        },
                    },
                },
                "responses": {
                    "200": _geojson(_ref("Incident")),
                    **_errors(400, 401, 403, 404, 409, 413, 422),
                },
            }
        },
    }
    error_schema = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "field"],
                "properties": {
                    "code": _STRING,
                    "message": _STRING,
                    "field": _nullable(_STRING),
                    "allowed_actions": {"type": "array", "items": _STRING},
                    "status": _STRING,
                    "retry_after": {"type": "integer"},
                },
            }
        },
    }
    descriptions = {
        400: "Malformed input; error.field names it",
        401: "Not authenticated",
        403: "Not allowed for this role or outside the caller's grids/department (or no CSRF proof)",
        404: "Not found, or not visible to the caller",
        409: "Not possible in the current state; error.allowed_actions lists what is",
        413: "Too large",
        422: "Well-formed but refused (unknown category, point outside the county...)",
        429: "Too many failed logins",
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "gridwatch API",
            "version": "1",
            "description": "网格化管理 — incidents, grids and the workflow of a county grid center. "
            "See docs/api.md and docs/workflow.md.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths
        | analytics_views.openapi_paths()
        | spot_views.openapi_paths()
        | leader_report_views.openapi_paths()
        | patrol_views.openapi_paths(),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "gridwatch users create / auth/tokens",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "session",
                    "description": "From /auth/login; changes need the X-CSRF-Token header",
                },
            },
            "schemas": {
                "Error": error_schema,
                "Me": {
                    "type": "object",
                    "required": ["id", "username", "role", "grids"],
                    "properties": {
                        "id": {"type": "integer"},
                        "username": _STRING,
                        "display_name": _STRING,
                        "role": {
                            "type": "string",
                            "enum": ["inspector", "operator", "department", "leader", "admin"],
                        },
                        "department": _nullable(_STRING),
                        "grids": {"type": "array", "items": _STRING},
                        "csrf_token": _STRING,
                    },
                },
                "Incident": _feature(_INCIDENT_PROPERTIES, _POINT, {"type": "integer"}),
                "FiledIncident": {
                    "allOf": [
                        _ref("Incident"),
                        {
                            "type": "object",
                            "required": ["possible_duplicates", "photo_locations"],
                            "properties": {
                                "possible_duplicates": {"type": "array", "items": {"type": "object"}},
                                "photo_locations": {"type": "array", "items": {"type": "object"}},
                            },
                        },
                    ]
                },
                "Category": _CATEGORY,
                "UserRecord": _USER_RECORD,
                "Grid": _feature(_GRID_PROPERTIES, {"type": "object"}, {"type": "string"}),
            },
            "responses": {
                f"E{code}": _json(_ref("Error"), description) for code, description in descriptions.items()
            },
        },
    }


@blueprint.get("/openapi.json")
def openapi_document():
    response = jsonify(build_document())
    response.mimetype = "application/vnd.oai.openapi+json"
    return response


@blueprint.get("/docs")
def docs_page():
    return Response(DOCS_PAGE, mimetype="text/html")
