"""``/api/v1`` reference data (categories, departments: everyone reads) and its administration
(category settings, users: admins only)."""

from __future__ import annotations

import re
from datetime import date

from flask import Blueprint, jsonify

from server import http_input
from server.admin import service, work_calendar
from server.auth import require_user
from server.auth.users import ROLES, User, create_user, issue_token
from server.db import get_db
from server.errors import Forbidden, InvalidInput, NotFound
from server.incidents.service import PRIORITIES

blueprint = Blueprint("admin", __name__, url_prefix="/api/v1")

_CATEGORY_NUMBERS = {
    "time_limit_s": (60, 90 * 86400),
    "duplicate_radius_m": (1, 10_000),
    "duplicate_window_s": (60, 90 * 86400),
}


def require_admin() -> User:
    user = require_user()
    if user.role != "admin":
        raise Forbidden("only an admin may change settings or users", field=None)
    return user


@blueprint.get("/categories")
def categories():
    require_user()
    with get_db().connection() as conn:
        return jsonify({"categories": service.list_categories(conn)})


@blueprint.get("/departments")
def departments():
    require_user()
    with get_db().connection() as conn:
        rows = conn.execute("SELECT code, name_zh, name_en FROM departments ORDER BY code").fetchall()
    return jsonify({"departments": rows})


@blueprint.patch("/categories/<code>")
def update_category(code: str):
    require_admin()
    data = http_input.body_fields()
    changes: dict = {}
    for name in ("name_zh", "name_en"):
        if name in data:
            changes[name] = http_input.text(data, name, required=True, max_length=100)
    for name, (low, high) in _CATEGORY_NUMBERS.items():
        if name in data:
            changes[name] = http_input.integer(data, name, required=True, minimum=low, maximum=high)
    if "default_priority" in data:
        changes["default_priority"] = http_input.choice(data, "default_priority", PRIORITIES, required=True)
    if "time_limit_unit" in data:
        changes["time_limit_unit"] = http_input.choice(
            data, "time_limit_unit", service.TIME_LIMIT_UNITS, required=True
        )
    if "active" in data:
        changes["active"] = http_input.flag(data, "active")
    if "default_department" in data:
        changes["default_department"] = http_input.text(data, "default_department", max_length=40)
    with get_db().connection() as conn:
        return jsonify(service.update_category(conn, code=code, changes=changes))


@blueprint.get("/work-calendar")
def get_work_calendar():
    require_user()
    with get_db().connection() as conn:
        return jsonify(work_calendar.get_calendar(conn))


@blueprint.patch("/work-calendar")
def update_work_calendar():
    require_admin()
    data = http_input.body_fields()
    time_zone = http_input.text(data, "time_zone", max_length=64)
    weekdays = data.get("working_weekdays")
    hours = data.get("working_hours")
    with get_db().connection() as conn:
        calendar = work_calendar.update_calendar(
            conn,
            time_zone=time_zone,
            working_weekdays=None if weekdays is None else work_calendar.parse_weekdays(weekdays),
            working_hours=None if hours is None else work_calendar.parse_periods(hours),
        )
    return jsonify(calendar)


def _calendar_date(value: str) -> date:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise InvalidInput("date must be YYYY-MM-DD", field="date")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise InvalidInput(f"no such date {value}", field="date") from error


@blueprint.put("/work-calendar/days/<day>")
def set_work_calendar_day(day: str):
    """A holiday (working: false) or an adjusted working day, 调休 (working: true)."""
    require_admin()
    on_day = _calendar_date(day)
    data = http_input.body_fields()
    working = http_input.flag(data, "working")
    if working is None:
        raise InvalidInput("working is required: false for a holiday, true for a day worked", field="working")
    name = http_input.text(data, "name", max_length=100) or ""
    with get_db().connection() as conn:
        return jsonify(work_calendar.set_day(conn, day=on_day, working=working, name=name))


@blueprint.delete("/work-calendar/days/<day>")
def remove_work_calendar_day(day: str):
    require_admin()
    on_day = _calendar_date(day)
    with get_db().connection() as conn:
        work_calendar.remove_day(conn, day=on_day)
    return "", 204


@blueprint.get("/users")
def users():
    require_admin()
    with get_db().connection() as conn:
        return jsonify({"users": service.list_users(conn)})


@blueprint.post("/users")
def add_user():
    """Like ``gridwatch users create``: returns the user and a new API token (shown once)."""
    require_admin()
    data = http_input.body_fields()
    with get_db().connection() as conn:
        user = create_user(
            conn,
            username=http_input.text(data, "username", required=True, max_length=64),
            role=http_input.choice(data, "role", ROLES, required=True),
            display_name=http_input.text(data, "display_name", max_length=100),
            department_code=http_input.text(data, "department", max_length=40),
            grid_code=http_input.text(data, "grid", max_length=40),
            password=http_input.text(data, "password", max_length=1000),
        )
        token = issue_token(conn, user_id=user.id, label="created by an admin")
    return jsonify(
        {"user": {"id": user.id, "username": user.username, "role": user.role}, "token": token}
    ), 201


@blueprint.patch("/users/<username>")
def update_user(username: str):
    require_admin()
    data = http_input.body_fields()
    active = http_input.flag(data, "active")
    with get_db().connection() as conn:
        if active is not None:
            service.set_user_active(conn, username=username, active=active)
        row = next((u for u in service.list_users(conn) if u["username"] == username), None)
    if row is None:
        raise NotFound(f"no user {username!r}", field="username")
    return jsonify(row)
