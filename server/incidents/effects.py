"""What each workflow action changes on the incident, beyond its status and ``updated_at``:
one function per action returning (column changes, event data). ``service.perform`` has already
checked role, scope and state; these check the action's own input."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from server.errors import InvalidInput, Unprocessable
from server.incidents import workflow
from server.incidents.photos import CleanPhoto

# A due time further ahead is a typing error (and year 9999 in one time zone is year 10000 in UTC).
MAX_DUE_AHEAD = timedelta(days=366)


@dataclass(frozen=True)
class ActionInput:
    """Everything an action may carry; each action reads what it needs."""

    note: str | None = None
    department: str | None = None  # dispatch: a department code (default: the category's)
    rating: int | None = None  # rate: 1..5
    due_at: datetime | None = None  # extend, resume: the new due time (default: from the time limit)
    duplicate_of: int | None = None  # link_duplicate: the original incident
    photos: tuple[CleanPhoto, ...] = ()


def due_time(conn, *, category: str, start: datetime) -> datetime:
    """When a case of this category is due if its clock starts at ``start``: its time limit in
    calendar or working time (SQL ``due_time``, migration 0013, with the county's work calendar)."""
    return conn.execute(
        "SELECT due_time(%s, time_limit, time_limit_unit) AS due_at FROM categories WHERE code = %s",
        [start, category],
    ).fetchone()["due_at"]


def _check_new_due(due_at: datetime, *, later_than: datetime, now: datetime) -> None:
    if due_at <= later_than:
        raise Unprocessable(
            f"新的期限必须晚于 {later_than.isoformat()} / the new due time must be later than that",
            field="due_at",
        )
    if due_at > now + MAX_DUE_AHEAD:
        raise Unprocessable("新的期限不能超过一年 / the new due time must be within a year", field="due_at")


def no_effect(conn, *, row, given, now) -> tuple[dict, dict | None]:
    return {}, None


def accept(conn, *, row, given, now):
    return {"accepted_at": now}, None


def reject(conn, *, row, given, now):
    return {"rejected_at": now}, {"reason": given.note}


def link_duplicate(conn, *, row, given, now):
    if given.duplicate_of is None:
        raise InvalidInput(
            "link_duplicate needs duplicate_of: the original incident's id", field="duplicate_of"
        )
    if given.duplicate_of == row["id"]:
        raise Unprocessable("an incident cannot duplicate itself", field="duplicate_of")
    original = conn.execute(
        "SELECT id, status, duplicate_of FROM incidents WHERE id = %s", [given.duplicate_of]
    ).fetchone()
    if original is None:
        raise Unprocessable(f"no incident {given.duplicate_of}", field="duplicate_of")
    if original["duplicate_of"] is not None or original["status"] == "rejected":
        raise Unprocessable(
            "link to the original case, not to a duplicate or a rejected one", field="duplicate_of"
        )
    return {"rejected_at": now, "duplicate_of": original["id"]}, {"duplicate_of": original["id"]}


def dispatch(conn, *, row, given, now):
    if given.department is not None:
        found = conn.execute(
            "SELECT id, code FROM departments WHERE code = %s", [given.department]
        ).fetchone()
        if found is None:
            raise Unprocessable(f"no department {given.department!r}", field="department")
    else:
        found = conn.execute(
            """SELECT d.id, d.code FROM categories c JOIN departments d ON d.id = c.default_department_id
                WHERE c.code = %s""",
            [row["category"]],
        ).fetchone()
        if found is None:
            raise InvalidInput("this category has no default department: name one", field="department")
    due_at = due_time(conn, category=row["category"], start=now)
    changes = {"department_id": found["id"], "dispatched_at": now, "due_at": due_at}
    return changes, {"department": found["code"], "due_at": due_at.isoformat()}


def resolve(conn, *, row, given, now):
    return {"resolved_at": now}, None


def verify(conn, *, row, given, now):
    return {"verified_at": now}, None


def rework(conn, *, row, given, now):
    return {"rework_count": row["rework_count"] + 1, "verified_at": None}, {"reason": given.note}


def close(conn, *, row, given, now):
    return {"closed_at": now}, None


def rate(conn, *, row, given, now):
    if given.rating is None:
        raise InvalidInput("rate needs a rating from 1 to 5", field="rating")
    return {"rating": given.rating, "rated_at": now}, {"rating": given.rating}


def return_to_center(conn, *, row, given, now):
    changes = {"department_id": None, "dispatched_at": None, "due_at": None}
    return changes, {"department": row["department"], "reason": given.note}


def extend(conn, *, row, given, now):
    """To the given due time, or by one more time limit of the category from the current one."""
    due_at = given.due_at or due_time(conn, category=row["category"], start=row["due_at"])
    _check_new_due(due_at, later_than=row["due_at"], now=now)
    changes = {"due_at": due_at, "extension_count": row["extension_count"] + 1}
    return changes, {"from": row["due_at"].isoformat(), "due_at": due_at.isoformat()}


def register(conn, *, row, given, now):
    """挂账: the clock stops; the register event keeps the due time that was running."""
    changes = {"registered_at": now, "due_at": None}
    return changes, {"reason": given.note, "due_at": row["due_at"].isoformat()}


def resume(conn, *, row, given, now):
    """Back to handling with a new clock, as if dispatched now: to the given due time, or one
    time limit of the category from now. The event keeps the old dispatch time."""
    due_at = given.due_at or due_time(conn, category=row["category"], start=now)
    _check_new_due(due_at, later_than=now, now=now)
    changes = {"dispatched_at": now, "due_at": due_at}
    return changes, {"due_at": due_at.isoformat(), "dispatched_at": row["dispatched_at"].isoformat()}


def escalate(conn, *, row, given, now):
    level = workflow.next_handling_level(row["handling_level"])
    return {"handling_level": level}, {"from": row["handling_level"], "to": level}


def self_handle(conn, *, row, given, now):
    return {"self_handled": True, "resolved_at": now}, None


EFFECTS = {
    "accept": accept,
    "reject": reject,
    "link_duplicate": link_duplicate,
    "dispatch": dispatch,
    "resolve": resolve,
    "verify": verify,
    "rework": rework,
    "close": close,
    "rate": rate,
    "return": return_to_center,
    "extend": extend,
    "register": register,
    "resume": resume,
    "escalate": escalate,
    "self_handle": self_handle,
}
