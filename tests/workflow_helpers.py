"""Shared helpers for the workflow, authorization and API tests: the small county's people and
a way to drive an incident to any status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.auth.users import User, get_user
from server.incidents import service, workflow

T0 = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)  # after every fixture incident was reported
OWN_POINT = (103.31, 29.86)  # grid 511423001001001, walked by inspector1
OTHER_POINT = (103.31, 29.91)  # grid 511423001002001, walked by inspector2

# The actions that lead from 'reported' to each status, with who takes each.
PATH_TO = {
    "reported": [],
    "accepted": [("accept", "operator1")],
    "rejected": [("reject", "operator1")],
    "dispatched": [("accept", "operator1"), ("dispatch", "operator1")],
    "in_progress": [("accept", "operator1"), ("dispatch", "operator1"), ("start", "handler1")],
    "registered": [
        ("accept", "operator1"),
        ("dispatch", "operator1"),
        ("start", "handler1"),
        ("register", "operator1"),
    ],
    "resolved": [
        ("accept", "operator1"),
        ("dispatch", "operator1"),
        ("start", "handler1"),
        ("resolve", "handler1"),
    ],
    "verified": [
        ("accept", "operator1"),
        ("dispatch", "operator1"),
        ("start", "handler1"),
        ("resolve", "handler1"),
        ("verify", "inspector1"),
    ],
    "closed": [
        ("accept", "operator1"),
        ("dispatch", "operator1"),
        ("start", "handler1"),
        ("resolve", "handler1"),
        ("verify", "inspector1"),
        ("close", "operator1"),
    ],
}


def people(conn) -> dict[str, User]:
    rows = conn.execute("SELECT id FROM users ORDER BY id").fetchall()
    users = [get_user(conn, user_id=row["id"]) for row in rows]
    return {user.username: user for user in users}


def file(conn, user: User, *, point=OWN_POINT, category="safety_hazard", now=T0, **more) -> dict:
    filing = service.Filing(lon=point[0], lat=point[1], category=category, description="test", **more)
    return service.file_incident(conn, user=user, filing=filing, now=now).incident


def drive(conn, users: dict[str, User], incident_id: int, status: str, *, start=T0) -> datetime:
    """Move an incident to ``status`` along PATH_TO, one minute per step; returns the last time.
    The department is the one of handler1 (emergency: safety_hazard's default)."""
    now = start
    for action, username in PATH_TO[status]:
        now += timedelta(minutes=1)
        given = service.ActionInput(note="测试" if action in workflow.NOTE_REQUIRED else None)
        service.perform(
            conn, user=users[username], incident_id=incident_id, action=action, now=now, given=given
        )
    return now
