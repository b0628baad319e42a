"""The incident card, the live counters and the work queues on the real database: rendered per
language, actions through the workflow service, and nothing offered to a role that may not act."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from dashboard import card, livestats, queues
from dashboard.filters import resolve_period
from server.auth.users import get_user
from server.errors import Conflict, InvalidInput
from server.incidents import service
from server.incidents.photos import clean_photo

NOW = datetime(2026, 6, 3, 9, 0, tzinfo=UTC)  # two days after the fixture's reports


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


def dispatch(conn, operator, incident_id: int, *, department: str | None = None) -> None:
    for action in ("accept", "dispatch"):
        card.act(
            conn,
            user=operator,
            incident_id=incident_id,
            action=action,
            now=NOW,
            note=None,
            department=department,
            new_due=None,
        )


def test_operator_card_offers_the_centres_actions_and_shows_the_grid_member(conn):
    operator = user_named(conn, "operator1")
    incident = card.load(conn, user=operator, incident_id=first_incident(conn), now=NOW)
    shown = text_of(card.render(incident, language="zh", now=NOW, departments=[]))
    assert "待受理" in shown and "环境卫生" in shown and "张网格" in shown and "未派遣" in shown
    assert card.card_actions(incident) == ["accept", "reject", "escalate"]


def test_a_leader_reads_the_card_in_english_without_actions(conn):
    leader = user_named(conn, "leader1")
    incident = card.load(conn, user=leader, incident_id=first_incident(conn), now=NOW)
    shown = text_of(card.render(incident, language="en", now=NOW, departments=[]))
    assert card.card_actions(incident) == []
    assert "No action for your role now" in shown and "Sanitation" in shown and "Reported" in shown


def test_department_handlers_do_not_see_grid_members(conn):
    operator = user_named(conn, "operator1")
    incident_id = first_incident(conn)
    dispatch(conn, operator, incident_id, department="emergency")
    handler = user_named(conn, "handler1")
    assert card.load(conn, user=handler, incident_id=incident_id, now=NOW)["member"] is None


def test_accept_dispatch_and_extend_go_through_the_workflow(conn):
    operator = user_named(conn, "operator1")
    incident_id = first_incident(conn)
    dispatch(conn, operator, incident_id)
    incident = card.load(conn, user=operator, incident_id=incident_id, now=NOW)
    assert incident["status"] == "dispatched" and incident["department"] == "urban_management"
    assert incident["due_at"] == NOW + timedelta(days=1)
    assert [event["action"] for event in incident["events"]] == ["report", "accept", "dispatch"]
    assert "extend" in card.card_actions(incident)

    # The card's date-time field is county time (UTC+8).
    extended = card.act(
        conn,
        user=operator,
        incident_id=incident_id,
        action="extend",
        now=NOW,
        note="雨天延期",
        department=None,
        new_due="2026-06-05T18:00",
    )
    assert extended["due_at"] == datetime(2026, 6, 5, 10, 0, tzinfo=UTC)
    assert extended["extension_count"] == 1


def test_refused_actions_change_nothing(conn):
    operator = user_named(conn, "operator1")
    incident_id = first_incident(conn)
    common = {"user": operator, "incident_id": incident_id, "now": NOW, "department": None, "new_due": None}
    with pytest.raises(InvalidInput):
        card.act(conn, action="reject", note="  ", **common)
    card.act(conn, action="accept", note=None, **common)
    with pytest.raises(Conflict):
        card.act(conn, action="accept", note=None, **common)
    with pytest.raises(InvalidInput):
        card.parse_new_due("tomorrow")
    assert card.load(conn, user=operator, incident_id=incident_id, now=NOW)["status"] == "accepted"


def test_counters_follow_the_workflow_the_clock_and_the_viewer(conn):
    operator = user_named(conn, "operator1")
    numbers = livestats.counters(conn, user=operator, now=NOW, categories=[])
    assert numbers == {"new_today": 0, "open": 8, "overdue": 0, "closed_today": 0}
    assert livestats.counters(conn, user=operator, now=NOW, categories=["dispute"])["open"] == 0

    incident_id = first_incident(conn)
    dispatch(conn, operator, incident_id)
    later = NOW + timedelta(days=2)
    assert livestats.counters(conn, user=operator, now=later, categories=[])["overdue"] == 1
    county = (103.0, 29.0, 104.0, 30.0)
    assert livestats.overdue_ids(conn, user=operator, now=later, categories=[], bbox=county) == [incident_id]
    elsewhere = (104.0, 29.0, 105.0, 30.0)
    assert livestats.overdue_ids(conn, user=operator, now=later, categories=[], bbox=elsewhere) == []
    # A department handler counts only what is dispatched to their department.
    handler = user_named(conn, "handler1")
    assert livestats.counters(conn, user=handler, now=later, categories=[])["open"] == 0


def test_queues_hold_what_waits_for_the_centre(conn):
    operator = user_named(conn, "operator1")

    def queue(name, now=NOW, period=None):
        rows = queues.queue_rows(conn, queue=name, user=operator, now=now, categories=[], period=period)
        return [row["id"] for row in rows]

    reported = [row["id"] for row in conn.execute("SELECT id FROM incidents ORDER BY reported_at").fetchall()]
    assert queue("new") == reported
    june = resolve_period("month", NOW).bounds()
    july = resolve_period("month", datetime(2026, 7, 10, tzinfo=UTC)).bounds()
    assert queue("new", period=june) == reported and queue("new", period=july) == []

    incident_id = reported[0]
    dispatch(conn, operator, incident_id, department="emergency")
    assert queue("due_soon", now=NOW + timedelta(hours=20)) == [incident_id]
    assert queue("overdue", now=NOW + timedelta(hours=25)) == [incident_id]
    handler = user_named(conn, "handler1")
    card.act(
        conn,
        user=handler,
        incident_id=incident_id,
        action="return",
        now=NOW,
        note="不属于本部门职责",
        department=None,
        new_due=None,
    )
    assert queue("returned") == [incident_id]
    sizes = queues.queue_sizes(conn, user=operator, now=NOW, categories=[], period=None)
    assert sizes == {"new": 7, "overdue": 0, "due_soon": 0, "returned": 1, "verify": 0}


def test_the_card_shows_the_reports_photos(conn):
    operator = user_named(conn, "operator1")
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 160, 90)).save(jpeg, format="JPEG")
    filed = service.file_incident(
        conn,
        user=operator,
        filing=service.Filing(
            lon=103.31, lat=29.86, category="sanitation", photos=(clean_photo(jpeg.getvalue()),)
        ),
        now=NOW,
    )
    incident = card.load(conn, user=operator, incident_id=filed.incident["id"], now=NOW)
    rendered = card.render(incident, language="zh", now=NOW, departments=[])
    photo_id = incident["photos"][0]["id"]

    def images(component):
        children = getattr(component, "children", None)
        found = [component.src] if type(component).__name__ == "Img" else []
        for child in children if isinstance(children, list) else [children]:
            if child is not None and not isinstance(child, str):
                found += images(child)
        return found

    assert images(rendered) == [f"/api/v1/incidents/{incident['id']}/photos/{photo_id}"]


def test_the_card_files_a_case_on_the_register_and_resumes_it(conn):
    operator = user_named(conn, "operator1")
    incident_id = first_incident(conn)
    dispatch(conn, operator, incident_id)
    common = {"user": operator, "incident_id": incident_id, "now": NOW, "department": None}
    dispatched = card.load(conn, user=operator, incident_id=incident_id, now=NOW)
    assert {"register", "extend"} <= set(card.card_actions(dispatched))

    registered = card.act(conn, action="register", note="需市级协调资金", new_due=None, **common)
    assert registered["status"] == "registered" and registered["due_at"] is None
    assert card.card_actions(registered) == ["resume"]
    shown = text_of(card.render(registered, language="zh", now=NOW, departments=[]))
    assert "已挂账" in shown and "暂停计时" in shown and "需市级协调资金" in shown

    # Resuming takes the card's new due time (county time), like an extension.
    resumed = card.act(conn, action="resume", note=None, new_due="2026-06-10T17:00", **common)
    assert resumed["status"] == "in_progress"
    assert resumed["due_at"] == datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


def test_the_card_shows_when_an_offline_report_was_observed(conn):
    inspector = user_named(conn, "inspector1")
    operator = user_named(conn, "operator1")
    filed = service.file_incident(
        conn,
        user=inspector,
        filing=service.Filing(
            lon=103.3105, lat=29.8985, category="sanitation", description="离线上报",
            observed_at=NOW - timedelta(hours=3),
        ),
        now=NOW,
    )  # fmt: skip
    incident = card.load(conn, user=operator, incident_id=filed.incident["id"], now=NOW)
    shown = text_of(card.render(incident, language="en", now=NOW, departments=[]))
    assert "Observed" in shown and "Reported" in shown
