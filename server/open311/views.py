"""Open311 GeoReport v2 at ``/open311/v2``: a 12345 hotline (or any Open311 client) files service
requests and reads their status back, in JSON or XML.

Mapping: a service is an incident category; a service request is an incident, filed through
the same ``service.file_incident`` as the REST API (channel ``open311``). ``status`` is open
until the incident is closed or rejected (a case on the register, 挂账, is open: it is
backlog); ``status_notes`` is the latest event's note (or the name of its action);
``expected_datetime`` is the due time (none on the register); ``agency_responsible`` the
department. Unlike the spec's public reads, every request except discovery and services needs an
``api_key`` (a gridwatch API token): incidents are not public in a grid center.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, request, url_for
from itsdangerous import BadData, URLSafeSerializer
from werkzeug.exceptions import HTTPException

from server import clock, http_input
from server.auth import current_user
from server.auth.users import User, user_for_token
from server.db import get_db
from server.errors import Forbidden, GridwatchError, InvalidInput, NotFound
from server.incidents import service, workflow
from server.open311.formats import render

blueprint = Blueprint("open311", __name__, url_prefix="/open311/v2")

FORMAT = "<any(json, xml):fmt>"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
DEFAULT_WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
CLOSED = ("closed", "rejected")
_ACTION_NOTES = {
    "report": "已上报 / reported",
    **{a: f"{t.label_zh} / {a}" for a, t in workflow.TRANSITIONS.items()},
}


# -- errors in the spec's shape ----------------------------------------------------------------

# The spec knows 400 (bad request), 403 (bad api_key), 404 and server errors.
_SPEC_STATUS = {401: 403, 409: 400, 422: 400}


@blueprint.errorhandler(GridwatchError)
def _spec_error(error: GridwatchError):
    status = _SPEC_STATUS.get(error.status, error.status)
    description = f"{error.field}: {error.message}" if error.field else error.message
    return render("errors", [{"code": status, "description": description}], _format(), status)


@blueprint.errorhandler(HTTPException)
def _spec_http_error(error: HTTPException):
    status = error.code or 500
    return render("errors", [{"code": status, "description": error.description}], _format(), status)


def _format() -> str:
    return (request.view_args or {}).get("fmt", "json")


# -- who is calling ------------------------------------------------------------------------------


def _caller() -> User:
    """The user of ``api_key`` (a gridwatch API token), else of the Authorization header."""
    api_key = request.values.get("api_key")
    if api_key:
        with get_db().connection() as conn:
            user = user_for_token(conn, token=api_key[:200], now=clock.now())
        if user is None:
            raise Forbidden("api_key is invalid or revoked", field="api_key")
        return user
    user = current_user()
    if user is None:
        raise Forbidden("an api_key is required", field="api_key")
    return user


def _tokens() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="gridwatch.open311.token")


# -- discovery and services -------------------------------------------------------------------------


@blueprint.get(f"/discovery.{FORMAT}")
def discovery(fmt: str):
    return render(
        "discovery",
        {
            "changeset": "2026-11-01T00:00:00+08:00",
            "contact": "县网格化服务管理中心 / county grid management center",
            "key_service": "API keys are gridwatch API tokens: ask the grid center (gridwatch users create)",
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": url_for("open311.services", fmt=fmt, _external=True).rsplit("/", 1)[0],
                    "changeset": "2026-11-01T00:00:00+08:00",
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        },
        fmt,
    )


@blueprint.get(f"/services.{FORMAT}")
def services(fmt: str):
    with get_db().connection() as conn:
        rows = conn.execute(
            """SELECT code, name_zh, name_en, group_code FROM categories WHERE active ORDER BY code"""
        ).fetchall()
    payload = [
        {
            "service_code": row["code"],
            "service_name": row["name_zh"],
            "description": row["name_en"],
            "metadata": True,
            "type": "realtime",
            "keywords": f"{row['code']},{row['name_en']}",
            "group": row["group_code"],
        }
        for row in rows
    ]
    return render("services", payload, fmt)


def _attributes() -> list[dict]:
    def choices(options):
        return [{"key": option, "name": option} for option in options]

    return [
        {
            "variable": True,
            "code": "priority",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "low, normal, high or urgent; default: the category's",
            "order": 1,
            "description": "优先级 / priority",
            "values": choices(service.PRIORITIES),
        },
        {
            "variable": True,
            "code": "crs",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "gcj02 when lat/long were picked on a Gaode or Tencent map",
            "order": 2,
            "description": "坐标系 / coordinate system of lat/long",
            "values": choices(service.CRS_OPTIONS),
        },
        {
            "variable": True,
            "code": "accuracy_m",
            "datatype": "number",
            "required": False,
            "datatype_description": "metres",
            "order": 3,
            "description": "定位精度 / position accuracy",
            "values": [],
        },
    ]


@blueprint.get(f"/services/<code>.{FORMAT}")
def service_definition(code: str, fmt: str):
    with get_db().connection() as conn:
        found = conn.execute("SELECT code FROM categories WHERE code = %s AND active", [code]).fetchone()
    if found is None:
        raise NotFound(f"no service {code!r}", field="service_code")
    return render("service_definition", {"service_code": found["code"], "attributes": _attributes()}, fmt)


# -- requests ----------------------------------------------------------------------------------------


@blueprint.post(f"/requests.{FORMAT}")
def create_request(fmt: str):
    user = _caller()
    form = request.form.to_dict()
    attributes = {
        key[len("attribute[") : -1]: value for key, value in form.items() if key.startswith("attribute[")
    }
    if not form.get("lat") or not form.get("long"):
        raise InvalidInput("lat and long are required (addresses are not geocoded)", field="lat/long")
    names = " ".join(part for part in (form.get("first_name"), form.get("last_name")) if part)
    filing = service.Filing(
        lon=http_input.number(form, "long", required=True, minimum=-180, maximum=180),
        lat=http_input.number(form, "lat", required=True, minimum=-90, maximum=90),
        category=http_input.text(form, "service_code", required=True, max_length=40),
        description=http_input.text(form, "description", max_length=4000) or "",
        accuracy_m=http_input.number(attributes, "accuracy_m", minimum=0, maximum=99_999),
        crs=http_input.choice(attributes, "crs", service.CRS_OPTIONS) or "wgs84",
        channel="open311",
        priority=http_input.choice(attributes, "priority", service.PRIORITIES),
        reporter_name=names[:100] or None,
        reporter_phone=http_input.text(form, "phone", max_length=40),
    )
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 200 and key.isprintable()):
        raise InvalidInput("Idempotency-Key: 1-200 printable characters", field="Idempotency-Key")
    with get_db().connection() as conn:
        result = service.file_incident(conn, user=user, filing=filing, now=clock.now(), idempotency_key=key)
    incident_id = result.incident["id"]
    payload = [
        {
            "service_request_id": str(incident_id),
            "token": _tokens().dumps(incident_id),
            "service_notice": "",
            "account_id": form.get("account_id") or None,
        }
    ]
    return render("service_requests", payload, fmt, 200 if result.replayed else 201)


def _as_requests(conn, incidents: list[dict]) -> list[dict]:
    ids = [incident["id"] for incident in incidents]
    latest = {
        row["incident_id"]: row
        for row in conn.execute(
            """SELECT DISTINCT ON (incident_id) incident_id, action, note FROM incident_events
                WHERE incident_id = ANY(%s) ORDER BY incident_id, at DESC, id DESC""",
            [ids],
        ).fetchall()
    }
    departments = {
        row["code"]: row["name_zh"] for row in conn.execute("SELECT code, name_zh FROM departments")
    }
    requests = []
    for incident in incidents:
        event = latest.get(incident["id"])
        notes = (event["note"] or _ACTION_NOTES.get(event["action"], event["action"])) if event else ""
        requests.append(
            {
                "service_request_id": str(incident["id"]),
                "status": "closed" if incident["status"] in CLOSED else "open",
                "status_notes": notes,
                "service_name": incident["category_name_zh"],
                "service_code": incident["category"],
                "description": incident["description"],
                "agency_responsible": departments.get(incident["department"], ""),
                "service_notice": "",
                "requested_datetime": incident["reported_at"],
                "updated_datetime": incident["updated_at"],
                "expected_datetime": incident["due_at"],
                "address": incident["grid_name_zh"],
                "address_id": incident["grid"],
                "zipcode": "",
                "lat": incident["lat"],
                "long": incident["lon"],
                "media_url": "",
            }
        )
    return requests


@blueprint.get(f"/requests/<int:request_id>.{FORMAT}")
def get_request(request_id: int, fmt: str):
    user = _caller()
    with get_db().connection() as conn:
        incident = service.get_incident(conn, user=user, incident_id=request_id, now=clock.now())
        payload = _as_requests(conn, [incident])
    return render("service_requests", payload, fmt)


@blueprint.get(f"/requests.{FORMAT}")
def list_requests(fmt: str):
    """The spec's filters; with no dates, the 90 days before ``end_date`` (default now); at most
    1000 requests, newest first. ``service_request_id`` overrides the other filters."""
    user = _caller()
    args = http_input.query_args()
    now = clock.now()
    with get_db().read_connection() as conn:
        wanted = http_input.codes(args, "service_request_id", pattern=r"^[0-9]{1,18}$")
        if wanted:
            incidents = []
            for request_id in dict.fromkeys(int(value) for value in wanted):
                try:
                    incidents.append(service.get_incident(conn, user=user, incident_id=request_id, now=now))
                except NotFound:
                    continue
            return render("service_requests", _as_requests(conn, incidents), fmt)
        end = http_input.timestamp(args, "end_date", years=http_input.WINDOW_YEARS) or now
        start = (
            http_input.timestamp(args, "start_date", years=http_input.WINDOW_YEARS) or end - DEFAULT_WINDOW
        )
        statuses = http_input.codes(args, "status", options=("open", "closed"))
        chosen: tuple[str, ...] = ()
        if statuses and set(statuses) != {"open", "closed"}:
            chosen = CLOSED if statuses[0] == "closed" else workflow.OPEN_STATUSES
        where = service.IncidentFilter(
            categories=http_input.codes(args, "service_code", pattern=r"^[a-z0-9_]{2,40}$"),
            statuses=chosen,
            reported_after=start,
            reported_before=end + timedelta(microseconds=1),  # the spec's end_date is inclusive
        )
        incidents, _ = service.list_incidents(conn, user=user, now=now, where=where, limit=MAX_REQUESTS)
        return render("service_requests", _as_requests(conn, incidents), fmt)


@blueprint.get(f"/tokens/<token>.{FORMAT}")
def token(token: str, fmt: str):
    _caller()
    try:
        incident_id = _tokens().loads(token)
    except BadData as error:
        raise NotFound("no request with this token", field="token") from error
    return render("service_requests", [{"token": token, "service_request_id": str(incident_id)}], fmt)
