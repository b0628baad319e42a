"""The incident card and the live numbers, on the real database: rendered per language, actions
through the workflow service, and nothing offered to a role that may not act."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard import card, livestats, queues
from dashboard.i18n import format_count, format_duration
from server.auth.users import get_user
from server.errors import Conflict

NOW = datetime(2026, 6, 3, 9, 0, tzinfo=UTC)


def user_named(conn, username):
    user_id = conn.execute("SELECT id FROM users WHERE username = %s", [username]).fetchone()["id"]
    return get_user(conn, user_id=user_id)


def first_incident(conn) -> int:
    return conn.execute("SELECT min(id) AS id FROM incidents").fetchone()["id"]


def text_of(component) -> str:
    """All the text a Dash component tree shows."""
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(text_of(child) for child in component)
    return text_of(getattr(component, "children", None))


def test_operator_card_offers_accept_and_shows_the_grid_member(conn):
    operator = user_named(conn, "operator1")
    incident = card.load(conn, user=operator, incident_id=first_incident(conn), now=NOW)
    rendered = card.render(incident, language="zh", now=NOW, departments=[])
    shown = text_of(rendered)
    assert "待受理" in shown and "环境卫生" in shown and "张网格" in shown
    assert card.card_actions(incident) == ["accept", "reject", "escalate"]
