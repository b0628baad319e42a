"""The shapes of gridwatch's answers, as OpenAPI 3.0 schemas (components of the document that
server/openapi.py derives). Inputs are not here: each endpoint's query and body are pydantic
models beside its view, and the document takes them from there. The schemathesis run in the tests
checks every answer against these."""

from __future__ import annotations

from server.admin.service import TIME_LIMIT_UNITS
from server.auth.users import ROLES
from server.incidents import service, workflow


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_reply(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def geojson_reply(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/geo+json": {"schema": schema}}}


def listing(key: str, item: dict) -> dict:
    """``{key: [item, ...]}``."""
    return {"type": "object", "required": [key], "properties": {key: {"type": "array", "items": item}}}


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


_STRING = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}

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


_USER_RECORD = {
    "type": "object",
    "required": ["id", "username", "role", "active", "grids"],
    "properties": {
        "id": {"type": "integer"},
        "username": _STRING,
        "display_name": _STRING,
        "role": {"type": "string", "enum": list(ROLES)},
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
            "features": {"type": "array", "items": ref(feature)},
            "numberReturned": {"type": "integer"},
            "links": {"type": "array", "items": _LINK},
        },
    }


# What each error status means, in every operation that may answer it.
ERRORS = {
    400: "Malformed input: error.field names the parameter or field, error.message says what is wrong",
    401: "Not authenticated: no session or token, or it has ended",
    403: "Not allowed for this role, outside the caller's grids or department, or no CSRF proof",
    404: "Not found, or not visible to the caller",
    409: "Not possible in the current state; error.allowed_actions lists what is",
    413: "The body is larger than the server takes (photos: see the field's limits)",
    422: "Well-formed but refused: an unknown field or parameter (code unknown_field), or what the "
    "domain refuses (an unknown category, a point outside the county, a time in the future...)",
    429: "Too many failed logins from this address or for this user: error.retry_after seconds",
}
# Answered by the HTTP server in front of the app (gunicorn: a request line over 8 KiB), as HTML.
URI_TOO_LONG = {"description": "The URL is longer than the server reads", "content": {"text/html": {}}}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": _STRING,
                "message": {**_STRING, "description": "in the caller's language (Accept-Language)"},
                "field": _nullable(_STRING),
                "allowed_actions": {"type": "array", "items": _STRING},
                "status": _STRING,
                "retry_after": {"type": "integer"},
            },
        }
    },
}

_ME = {
    "type": "object",
    "required": ["id", "username", "role", "grids"],
    "properties": {
        "id": {"type": "integer"},
        "username": _STRING,
        "display_name": _STRING,
        "role": {"type": "string", "enum": list(ROLES)},
        "department": _nullable(_STRING),
        "grids": {"type": "array", "items": _STRING},
        "csrf_token": _STRING,
    },
}

COMPONENTS = {
    "Error": _ERROR,
    "Me": _ME,
    "Incident": _feature(_INCIDENT_PROPERTIES, _POINT, {"type": "integer"}),
    "FiledIncident": {
        "allOf": [
            ref("Incident"),
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
    "IncidentCollection": _collection("Incident"),
    "Category": _CATEGORY,
    "UserRecord": _USER_RECORD,
    "Token": _TOKEN,
    "WorkCalendar": _WORK_CALENDAR,
    "CalendarDay": _CALENDAR_DAY,
    "Grid": _feature(_GRID_PROPERTIES, {"type": "object"}, {"type": "string"}),
    "GridCollection": _collection("Grid"),
}
