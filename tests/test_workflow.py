"""The workflow state machine: every transition, its refusals, its one event, and the clock-driven
parts (due time, warnings, overdue, escalation) with a controlled clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from workflow_helpers import OWN_POINT, PATH_TO, T0, drive, file, people

from server.cli import main
from server.errors import Conflict, Forbidden, InvalidInput, NotFound, Unprocessable
from server.incidents import service, workflow
from server.incidents.service import ActionInput


@pytest.fixture
def users(conn):
    return people(conn)


def act(conn, users, incident_id, action, username, now, **given):
    return service.perform(
        conn,
        user=users[username],
        incident_id=incident_id,
        action=action,
        now=now,
        given=ActionInput(**given),
    )


def events(conn, incident_id):
    return conn.execute(
        "SELECT action, from_status, to_status, actor_id, at, data FROM incident_events"
        " WHERE incident_id = %s ORDER BY id",
        [incident_id],
    ).fetchall()


def test_the_main_path_sets_each_timestamp_and_writes_one_event_per_step(conn, users):
    incident = file(conn, users["inspector1"])
    assert incident["status"] == "reported" and incident["grid"] == "511423001001001"
    steps = [
        ("accept", "operator1", "accepted", "accepted_at"),
        ("dispatch", "operator1", "dispatched", "dispatched_at"),
        ("start", "handler1", "in_progress", None),
        ("resolve", "handler1", "resolved", "resolved_at"),
        ("verify", "inspector1", "verified", "verified_at"),
        ("close", "operator1", "closed", "closed_at"),
    ]
    now = T0
    for action, username, status, column in steps:
        now += timedelta(hours=1)
        incident = act(conn, users, incident["id"], action, username, now)
        assert incident["status"] == status
        if column:
            assert incident[column] == now
    assert incident["department"] == "emergency"
    assert incident["due_at"] == incident["dispatched_at"] + timedelta(days=2)  # safety_hazard limit
    incident = act(conn, users, incident["id"], "rate", "operator1", now, rating=5)
    assert incident["status"] == "closed" and incident["rating"] == 5 and incident["rated_at"] == now
    log = events(conn, incident["id"])
    assert [e["action"] for e in log] == ["report"] + [s[0] for s in steps] + ["rate"]
    assert [(e["from_status"], e["to_status"]) for e in log][:2] == [
        (None, "reported"),
        ("reported", "accepted"),
    ]
    assert log[-1]["from_status"] == log[-1]["to_status"] == "closed"
    assert log[2]["data"] == {"department": "emergency", "due_at": incident["due_at"].isoformat()}
    assert incident["events"][1]["actor"] == "operator1"
    assert incident["overdue"] is False and incident["warning"] is None


def test_every_action_is_refused_in_every_state_that_does_not_allow_it(conn, users):
    """For each status and each action its table entry does not start from: 409 naming the
    allowed actions, and nothing changes."""
    acting = {"operator": "operator1", "inspector": "inspector1", "department": "handler1"}
    refusals = 0
    for status in PATH_TO:
        incident = file(conn, users["inspector1"])
        last = drive(conn, users, incident["id"], status)
        before = conn.execute("SELECT * FROM incidents WHERE id = %s", [incident["id"]]).fetchone()
        event_count = len(events(conn, incident["id"]))
        for action, transition in workflow.TRANSITIONS.items():
            if status in transition.from_statuses:
                continue
            role = next(iter(transition.roles))
            if role == "department" and status in ("reported", "accepted", "rejected"):
                # Not yet (or never) dispatched: the department does not even see the case.
                with pytest.raises(NotFound):
                    act(conn, users, incident["id"], action, acting[role], last, note="n")
                continue
            with pytest.raises(Conflict) as refused:
                act(conn, users, incident["id"], action, acting[role], last + timedelta(minutes=5), note="n")
            assert refused.value.field == "action"
            assert refused.value.extra["status"] == status
            assert action not in refused.value.extra["allowed_actions"]
            refusals += 1
        assert conn.execute("SELECT * FROM incidents WHERE id = %s", [incident["id"]]).fetchone() == before
        assert len(events(conn, incident["id"])) == event_count
    assert refusals > 60


def test_allowed_actions_follow_status_and_role(conn, users):
    incident = file(conn, users["inspector1"])
    assert service.get_incident(conn, user=users["operator1"], incident_id=incident["id"], now=T0)[
        "allowed_actions"
    ] == ["accept", "reject", "link_duplicate", "escalate", "comment"]
    assert service.get_incident(conn, user=users["inspector1"], incident_id=incident["id"], now=T0)[
        "allowed_actions"
    ] == ["escalate", "self_handle", "comment"]
    assert (
        service.get_incident(conn, user=users["leader1"], incident_id=incident["id"], now=T0)[
            "allowed_actions"
        ]
        == []
    )
    last = drive(conn, users, incident["id"], "in_progress")
    handler_view = service.get_incident(conn, user=users["handler1"], incident_id=incident["id"], now=last)
    assert handler_view["allowed_actions"] == ["resolve", "return", "comment"]


def test_rework_goes_back_to_the_department_and_counts(conn, users):
    incident = file(conn, users["inspector1"])
    last = drive(conn, users, incident["id"], "resolved")
    with pytest.raises(InvalidInput) as no_reason:
        act(conn, users, incident["id"], "rework", "inspector1", last)
    assert no_reason.value.field == "note"
    reworked = act(conn, users, incident["id"], "rework", "inspector1", last, note="垃圾未清理干净")
    assert reworked["status"] == "in_progress" and reworked["rework_count"] == 1
    again = act(conn, users, incident["id"], "resolve", "handler1", last + timedelta(hours=1))
    assert again["status"] == "resolved" and again["resolved_at"] == last + timedelta(hours=1)


def test_a_department_returns_a_misdispatched_case_to_the_center(conn, users):
    incident = file(conn, users["inspector1"])
    last = drive(conn, users, incident["id"], "in_progress")
    returned = act(conn, users, incident["id"], "return", "handler1", last, note="不属于本部门职责")
    assert returned["status"] == "accepted"
    assert returned["department"] is None and returned["due_at"] is None
    assert events(conn, incident["id"])[-1]["data"] == {
        "department": "emergency",
        "reason": "不属于本部门职责",
    }
    with pytest.raises(NotFound):  # no longer the department's case
        service.get_incident(conn, user=users["handler1"], incident_id=incident["id"], now=last)
    redispatched = act(conn, users, incident["id"], "dispatch", "operator1", last, department="water")
    assert redispatched["department"] == "water" and redispatched["status"] == "dispatched"


def test_an_extension_moves_the_due_time_and_counts(conn, users):
    incident = file(conn, users["inspector1"])
    last = drive(conn, users, incident["id"], "dispatched")
    due = service.get_incident(conn, user=users["operator1"], incident_id=incident["id"], now=last)["due_at"]
    with pytest.raises(Unprocessable) as earlier:
        act(
            conn,
            users,
            incident["id"],
            "extend",
            "operator1",
            last,
            note="x",
            due_at=due - timedelta(hours=1),
        )
    assert earlier.value.field == "due_at"
    extended = act(
        conn, users, incident["id"], "extend", "operator1", last, note="雨天", due_at=due + timedelta(days=1)
    )
    assert extended["due_at"] == due + timedelta(days=1) and extended["extension_count"] == 1
    assert extended["status"] == "dispatched"
    for far in (
        last + timedelta(days=367),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14))),
    ):
        with pytest.raises(Unprocessable) as too_far:
            act(conn, users, incident["id"], "extend", "operator1", last, note="x", due_at=far)
        assert too_far.value.field == "due_at"
    # Without a due time: one more time limit of the category (safety_hazard: 48 calendar hours).
    again = act(conn, users, incident["id"], "extend", "operator1", last, note="再延期")
    assert again["due_at"] == due + timedelta(days=3) and again["extension_count"] == 2


def test_self_handling_resolves_on_the_spot_and_is_then_verified_and_closed(conn, users):
    incident = file(conn, users["inspector1"], category="sanitation")
    now = T0 + timedelta(minutes=10)
    handled = act(conn, users, incident["id"], "self_handle", "inspector1", now, note="已现场清理")
    assert handled["status"] == "resolved" and handled["self_handled"] and handled["resolved_at"] == now
    assert handled["accepted_at"] is None and handled["department"] is None
    act(conn, users, incident["id"], "rework", "operator1", now, note="仍有垃圾")
    again = act(conn, users, incident["id"], "resolve", "inspector1", now)  # the member handles it again
    assert again["status"] == "resolved"
    act(conn, users, incident["id"], "verify", "operator1", now)
    closed = act(conn, users, incident["id"], "close", "operator1", now)
    assert closed["status"] == "closed" and closed["self_handled"]


def test_duplicates_are_found_and_linked(conn, users):
    first = file(conn, users["inspector1"], category="straw_burning")
    nearby = (OWN_POINT[0] + 0.002, OWN_POINT[1])  # about 190 m east: inside straw burning's 500 m
    result = service.file_incident(
        conn,
        user=users["inspector1"],
        filing=service.Filing(lon=nearby[0], lat=nearby[1], category="straw_burning"),
        now=T0 + timedelta(hours=2),
    )
    assert [d["id"] for d in result.possible_duplicates] == [first["id"]]
    assert 150 < result.possible_duplicates[0]["distance_m"] < 230
    other_category = service.file_incident(
        conn,
        user=users["inspector1"],
        filing=service.Filing(lon=nearby[0], lat=nearby[1], category="dispute"),
        now=T0 + timedelta(hours=2),
    )
    assert other_category.possible_duplicates == []
    late = service.file_incident(  # straw burning's window is one day
        conn,
        user=users["inspector1"],
        filing=service.Filing(lon=nearby[0], lat=nearby[1], category="straw_burning"),
        now=T0 + timedelta(days=2),
    )
    assert first["id"] not in [d["id"] for d in late.possible_duplicates]

    second = result.incident
    with pytest.raises(InvalidInput):
        act(conn, users, second["id"], "link_duplicate", "operator1", T0 + timedelta(hours=3))
    with pytest.raises(Unprocessable):
        act(
            conn,
            users,
            second["id"],
            "link_duplicate",
            "operator1",
            T0 + timedelta(hours=3),
            duplicate_of=second["id"],
        )
    linked = act(
        conn,
        users,
        second["id"],
        "link_duplicate",
        "operator1",
        T0 + timedelta(hours=3),
        duplicate_of=first["id"],
    )
    assert linked["status"] == "rejected" and linked["duplicate_of"] == first["id"]
    with pytest.raises(Unprocessable):  # never a chain of duplicates
        act(
            conn,
            users,
            late.incident["id"],
            "link_duplicate",
            "operator1",
            T0 + timedelta(days=2),
            duplicate_of=second["id"],
        )


def test_escalation_goes_one_level_up_until_the_county(conn, users):
    incident = file(conn, users["inspector1"])
    levels = []
    for _ in range(3):
        levels.append(act(conn, users, incident["id"], "escalate", "operator1", T0)["handling_level"])
    assert levels == ["village", "township", "county"]
    with pytest.raises(Conflict) as at_top:
        act(conn, users, incident["id"], "escalate", "operator1", T0)
    assert "county" in at_top.value.message
    assert [e["data"] for e in events(conn, incident["id"])[1:]][0] == {"from": "grid", "to": "village"}


def test_rating_happens_once(conn, users):
    incident = file(conn, users["inspector1"])
    last = drive(conn, users, incident["id"], "closed")
    with pytest.raises(InvalidInput):
        act(conn, users, incident["id"], "rate", "operator1", last)
    act(conn, users, incident["id"], "rate", "operator1", last, rating=4)
    with pytest.raises(Conflict):
        act(conn, users, incident["id"], "rate", "operator1", last, rating=5)


def test_warnings_and_overdue_follow_the_clock(conn, users):
    incident = file(conn, users["inspector1"], category="safety_hazard")  # 2 day limit
    last = drive(conn, users, incident["id"], "dispatched")
    due = last + timedelta(days=2)

    def seen(at):
        view = service.get_incident(conn, user=users["operator1"], incident_id=incident["id"], now=at)
        return view["warning"], view["overdue"]

    assert seen(last) == ("green", False)
    assert seen(due - timedelta(hours=12, minutes=1)) == ("green", False)
    assert seen(due - timedelta(hours=12)) == ("yellow", False)  # last 25 % of the time limit
    assert seen(due - timedelta(seconds=1)) == ("yellow", False)
    assert seen(due + timedelta(seconds=1)) == ("red", True)

    overdue_now = service.list_incidents(
        conn,
        user=users["operator1"],
        now=due + timedelta(hours=1),
        where=service.IncidentFilter(overdue=True),
        limit=50,
    )[0]
    assert [row["id"] for row in overdue_now] == [incident["id"]]

    # Closed late stays overdue forever; closed on time never is.
    for action, username in (("start", "handler1"), ("resolve", "handler1"), ("verify", "operator1")):
        act(conn, users, incident["id"], action, username, due + timedelta(hours=1))
    act(conn, users, incident["id"], "close", "operator1", due + timedelta(hours=2))
    assert seen(due + timedelta(days=30)) == (None, True)


def test_overdue_cases_escalate_automatically_one_level_per_time_limit(conn, users):
    incident = file(conn, users["inspector1"], category="flood_geohazard")  # 6 hour limit
    last = drive(conn, users, incident["id"], "dispatched")
    due = last + timedelta(hours=6)

    def level_after(at):
        service.escalate_overdue(conn, now=at)
        return service.get_incident(conn, user=users["operator1"], incident_id=incident["id"], now=at)[
            "handling_level"
        ]

    assert level_after(due - timedelta(minutes=1)) == "grid"
    assert level_after(due + timedelta(minutes=1)) == "village"
    assert level_after(due + timedelta(minutes=2)) == "village"  # calling again does nothing more
    assert level_after(due + timedelta(hours=6, minutes=1)) == "township"
    assert level_after(due + timedelta(days=3)) == "county"
    assert level_after(due + timedelta(days=30)) == "county"
    automatic = [e for e in events(conn, incident["id"]) if e["action"] == "escalate"]
    assert len(automatic) == 3 and all(e["actor_id"] is None and e["data"]["automatic"] for e in automatic)


def test_unknown_actions_invisible_incidents_and_notes(conn, users):
    incident = file(conn, users["inspector1"])
    with pytest.raises(NotFound):
        act(conn, users, incident["id"], "teleport", "operator1", T0)
    with pytest.raises(NotFound):
        act(conn, users, 10**9, "accept", "operator1", T0)
    with pytest.raises(InvalidInput) as reason:
        act(conn, users, incident["id"], "reject", "operator1", T0)
    assert reason.value.field == "note"
    with pytest.raises(Forbidden):
        act(conn, users, incident["id"], "accept", "leader1", T0)


def test_the_cli_escalates_overdue_incidents(conn, users, database_url):
    incident = file(conn, users["inspector1"], category="flood_geohazard")
    drive(conn, users, incident["id"], "dispatched")  # due six hours after T0, long past now
    conn.commit()
    result = CliRunner().invoke(
        main, ["incidents", "escalate-overdue"], env={"GRIDWATCH_DATABASE_URL": database_url}
    )
    assert result.exit_code == 0 and "escalated 1 overdue incidents" in result.output
    level = conn.execute("SELECT handling_level FROM incidents WHERE id = %s", [incident["id"]]).fetchone()
    assert level["handling_level"] == "village"


def test_a_registered_case_stops_its_clock_and_resumes_with_a_new_due_time(conn, users):
    incident = file(conn, users["inspector1"])  # safety_hazard: 48 calendar hours
    last = drive(conn, users, incident["id"], "in_progress")
    dispatched_at = last - timedelta(minutes=1)
    old_due = dispatched_at + timedelta(days=2)
    overdue_at = old_due + timedelta(hours=1)
    with pytest.raises(InvalidInput) as no_reason:
        act(conn, users, incident["id"], "register", "operator1", overdue_at)
    assert no_reason.value.field == "note"

    registered = act(
        conn, users, incident["id"], "register", "operator1", overdue_at, note="需县财政专项资金"
    )
    assert registered["status"] == "registered" and registered["registered_at"] == overdue_at
    assert registered["due_at"] is None and registered["overdue"] is False and registered["warning"] is None
    assert registered["department"] == "emergency"  # still the department's case
    assert events(conn, incident["id"])[-1]["data"] == {
        "reason": "需县财政专项资金",
        "due_at": old_due.isoformat(),
    }

    much_later = overdue_at + timedelta(days=90)
    assert service.escalate_overdue(conn, now=much_later) == 0
    for user, allowed in (
        ("operator1", ["resume", "comment"]),
        ("handler1", ["comment"]),
        ("inspector1", ["comment"]),
    ):
        seen = service.get_incident(conn, user=users[user], incident_id=incident["id"], now=much_later)
        assert seen["allowed_actions"] == allowed
    operator = users["operator1"]

    def listed(**where):
        rows, _ = service.list_incidents(
            conn, user=operator, now=much_later, where=service.IncidentFilter(**where), limit=100
        )
        return incident["id"] in [row["id"] for row in rows]

    assert not listed(overdue=True)
    assert listed(statuses=("registered",)) and listed(statuses=workflow.OPEN_STATUSES)  # still backlog

    with pytest.raises(Unprocessable) as past:
        act(
            conn,
            users,
            incident["id"],
            "resume",
            "operator1",
            much_later,
            due_at=much_later - timedelta(hours=1),
        )
    assert past.value.field == "due_at"
    resumed = act(conn, users, incident["id"], "resume", "operator1", much_later)
    assert resumed["status"] == "in_progress" and resumed["registered_at"] == overdue_at
    assert resumed["dispatched_at"] == much_later and resumed["due_at"] == much_later + timedelta(days=2)
    assert resumed["warning"] == "green" and resumed["overdue"] is False
    assert events(conn, incident["id"])[-1]["data"] == {
        "due_at": resumed["due_at"].isoformat(),
        "dispatched_at": dispatched_at.isoformat(),
    }
    # Filed on the register once more (from handling), then resumed to a given time.
    act(
        conn, users, incident["id"], "register", "operator1", much_later + timedelta(hours=1), note="再次挂账"
    )
    chosen = much_later + timedelta(days=10)
    again = act(
        conn, users, incident["id"], "resume", "operator1", much_later + timedelta(days=3), due_at=chosen
    )
    assert again["due_at"] == chosen and again["registered_at"] == much_later + timedelta(hours=1)
    resolved = act(conn, users, incident["id"], "resolve", "handler1", much_later + timedelta(days=4))
    assert resolved["status"] == "resolved"
