"""``/api/v1`` reference data (categories, departments: everyone reads) and its administration
(category settings, users: admins only)."""

from __future__ import annotations

from typing import Annotated, Literal

from flask import Blueprint, jsonify
from pydantic import BeforeValidator, Field
from werkzeug.routing import BaseConverter

from server.admin import service, work_calendar
from server.admin.service import TIME_LIMIT_UNITS
from server.auth import require_user
from server.auth.users import ROLES, User, create_user, issue_token
from server.db import get_db
from server.errors import Forbidden, NotFound
from server.incidents.service import PRIORITIES
from server.openapi import documented
from server.openapi_schemas import json_reply, listing, ref
from server.schema import BodyModel, Code, Flag, Integer, Text, integer_value, parse_body

blueprint = Blueprint("admin", __name__, url_prefix="/api/v1")


class UsernameConverter(BaseConverter):
    """A username in a path, never ``me``: ``/users/me`` is the caller (server/auth/views.py),
    and without this ``OPTIONS /users/me`` advertised this blueprint's PATCH."""

    regex = r"(?!me/?$)[A-Za-z0-9_.-]{2,64}"


blueprint.record_once(lambda state: state.app.url_map.converters.setdefault("username", UsernameConverter))

Weekday = Annotated[int, Field(ge=1, le=7), BeforeValidator(integer_value)]
CALENDAR_DATE = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
ADMIN_ERRORS = (403,)


class CategoryChanges(BodyModel):
    """Only the fields given change (``null`` is not a value: leave a field out to keep it)."""

    name_zh: Text = Field(None, min_length=1, max_length=100)
    name_en: Text = Field(None, min_length=1, max_length=100)
    time_limit_s: Integer = Field(None, ge=60, le=90 * 86400)
    time_limit_unit: Literal[TIME_LIMIT_UNITS] = Field(
        None,
        description="calendar: time_limit_s of clock time; working: of the work calendar's working hours"
        " (one working day = 7 h of the default calendar)",
    )
    default_department: Code | None = Field(
        None, description="A department code (GET /departments); null: none"
    )
    default_priority: Literal[PRIORITIES] = None
    duplicate_radius_m: Integer = Field(None, ge=1, le=10_000)
    duplicate_window_s: Integer = Field(None, ge=60, le=90 * 86400)
    active: Flag = None


class CalendarChanges(BodyModel):
    time_zone: Text = Field(None, min_length=1, max_length=64, description="An IANA time zone: Asia/Shanghai")
    working_weekdays: list[Weekday] = Field(
        None, min_length=1, max_length=7, description="ISO day numbers, 1 = Monday ... 7 = Sunday"
    )
    working_hours: list[Text] = Field(
        None,
        min_length=1,
        max_length=work_calendar.MAX_PERIODS,
        description="Working periods of a working day, local time, e.g. ['08:30-12:00', '14:00-17:30']",
    )


class CalendarDayInput(BodyModel):
    working: Flag = Field(description="false: a holiday; true: a weekend day worked (调休)")
    name: Text = Field("", max_length=100)


class NewUser(BodyModel):
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{2,64}$")
    role: Literal[ROLES]
    display_name: Text = Field(None, min_length=1, max_length=100)
    department: Code = Field(None, description="Department handlers: a department code")
    grid: Code = Field(None, description="Inspectors: a grid code they walk")
    password: Text = Field(None, min_length=1, max_length=1000)


class UserChanges(BodyModel):
    active: Flag = Field(description="false: every session and token of the user ends at once")


def require_admin() -> User:
    user = require_user()
    if user.role != "admin":
        raise Forbidden("only an admin may change settings or users", field=None)
    return user


@blueprint.get("/categories")
@documented(
    summary="Incident categories with time limits and default departments",
    responses={200: json_reply(listing("categories", ref("Category")))},
)
def categories():
    require_user()
    with get_db().connection() as conn:
        return jsonify({"categories": service.list_categories(conn)})


@blueprint.get("/departments")
@documented(
    summary="Departments that handle dispatched incidents",
    responses={200: json_reply(listing("departments", {"type": "object"}))},
)
def departments():
    require_user()
    with get_db().connection() as conn:
        rows = conn.execute("SELECT code, name_zh, name_en FROM departments ORDER BY code").fetchall()
    return jsonify({"departments": rows})


@blueprint.patch("/categories/<code>")
@documented(
    summary="Change a category's settings (admins); new time limits apply to later dispatches",
    body=CategoryChanges,
    responses={200: json_reply(ref("Category"))},
    errors=(*ADMIN_ERRORS, 404),
)
def update_category(code: str):
    require_admin()
    changes = parse_body(CategoryChanges).model_dump(exclude_unset=True)
    with get_db().connection() as conn:
        return jsonify(service.update_category(conn, code=code, changes=changes))


@blueprint.get("/work-calendar")
@documented(
    summary="The work calendar that working-time limits count in: hours, weekdays, holidays",
    responses={200: json_reply(ref("WorkCalendar"))},
)
def get_work_calendar():
    require_user()
    with get_db().connection() as conn:
        return jsonify(work_calendar.get_calendar(conn))


@blueprint.patch("/work-calendar")
@documented(
    summary="Change the time zone, working weekdays or working hours (admins); later due times use them",
    body=CalendarChanges,
    responses={200: json_reply(ref("WorkCalendar"))},
    errors=ADMIN_ERRORS,
)
def update_work_calendar():
    require_admin()
    changes = parse_body(CalendarChanges)
    weekdays, hours = changes.working_weekdays, changes.working_hours
    with get_db().connection() as conn:
        calendar = work_calendar.update_calendar(
            conn,
            time_zone=changes.time_zone,
            working_weekdays=None if weekdays is None else sorted(set(weekdays)),
            working_hours=None if hours is None else work_calendar.parse_periods(hours),
        )
    return jsonify(calendar)


@blueprint.put("/work-calendar/days/<day>")
@documented(
    summary="Mark a date as a holiday or an adjusted working day (调休) (admins)",
    body=CalendarDayInput,
    path={"day": CALENDAR_DATE},
    responses={200: json_reply(ref("CalendarDay"))},
    errors=ADMIN_ERRORS,
)
def set_work_calendar_day(day: str):
    """A holiday (working: false) or an adjusted working day, 调休 (working: true)."""
    require_admin()
    on_day = work_calendar.calendar_date(day, field="day")
    given = parse_body(CalendarDayInput)
    with get_db().connection() as conn:
        return jsonify(work_calendar.set_day(conn, day=on_day, working=given.working, name=given.name))


@blueprint.delete("/work-calendar/days/<day>")
@documented(
    summary="Remove a date's entry: it follows the working weekdays again (admins)",
    path={"day": CALENDAR_DATE},
    responses={204: {"description": "removed"}},
    errors=(400, *ADMIN_ERRORS, 404),
)
def remove_work_calendar_day(day: str):
    require_admin()
    on_day = work_calendar.calendar_date(day, field="day")
    with get_db().connection() as conn:
        work_calendar.remove_day(conn, day=on_day)
    return "", 204


@blueprint.get("/users")
@documented(
    summary="All users (admins)",
    responses={200: json_reply(listing("users", ref("UserRecord")))},
    errors=ADMIN_ERRORS,
)
def users():
    require_admin()
    with get_db().connection() as conn:
        return jsonify({"users": service.list_users(conn)})


@blueprint.post("/users")
@documented(
    summary="Add a user (admins); returns a new API token, shown once",
    body=NewUser,
    responses={
        201: json_reply(
            {
                "type": "object",
                "required": ["user", "token"],
                "properties": {"user": {"type": "object"}, "token": {"type": "string"}},
            }
        )
    },
    errors=(*ADMIN_ERRORS, 404, 409),
)
def add_user():
    """Like ``gridwatch users create``: returns the user and a new API token (shown once)."""
    require_admin()
    given = parse_body(NewUser)
    with get_db().connection() as conn:
        user = create_user(
            conn,
            username=given.username,
            role=given.role,
            display_name=given.display_name,
            department_code=given.department,
            grid_code=given.grid,
            password=given.password,
        )
        token = issue_token(conn, user_id=user.id, label="created by an admin")
    return jsonify(
        {"user": {"id": user.id, "username": user.username, "role": user.role}, "token": token}
    ), 201


@blueprint.patch("/users/<username:username>")
@documented(
    summary="Activate or deactivate a user (admins)",
    body=UserChanges,
    responses={200: json_reply(ref("UserRecord"))},
    errors=(*ADMIN_ERRORS, 404),
)
def update_user(username: str):
    require_admin()
    given = parse_body(UserChanges)
    with get_db().connection() as conn:
        service.set_user_active(conn, username=username, active=given.active)
        row = next((u for u in service.list_users(conn) if u["username"] == username), None)
    if row is None:
        raise NotFound(f"no user {username!r}", field="username")
    return jsonify(row)
