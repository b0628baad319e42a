"""Working-time limits: due times counted in the county's work calendar (08:30-12:00 and
14:00-17:30 Asia/Shanghai, Monday to Friday, with holidays and adjusted working days), used by
dispatch and extension; the calendar's administration over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from workflow_helpers import OWN_POINT, file, people

from server.clock import CLOCK_KEY
from server.incidents import effects, service
from server.incidents.service import ActionInput

CST = timezone(timedelta(hours=8))  # Asia/Shanghai has no daylight saving time


def at(day: int, hour: int, minute: int = 0, month: int = 6) -> datetime:
    """A local time in June 2026 (1 June is a Monday)."""
    return datetime(2026, month, day, hour, minute, tzinfo=CST)


def work_time_add(conn, start: datetime, hours: float) -> datetime:
    return conn.execute("SELECT work_time_add(%s, %s) AS due", [start, timedelta(hours=hours)]).fetchone()[
        "due"
    ]


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        (at(2, 10), 1, at(2, 11)),  # inside the morning
        (at(2, 11), 2, at(2, 15)),  # across the lunch break
        (at(2, 12, 30), 1, at(2, 15)),  # starting in the lunch break: the clock waits for 14:00
        (at(2, 11), 5, at(3, 9)),  # "dirty road: 5 working hours": across the night
        (at(2, 20), 7, at(3, 17, 30)),  # one working day from an evening: the next day's end, not 08:30
        (at(2, 10), 7, at(3, 10)),  # one working day = the same time on the next working day
        (at(5, 16), 7, at(8, 16)),  # Friday to Monday across the weekend
        (at(6, 10), 1, at(8, 9, 30)),  # filed on a Saturday: counts from Monday morning
        (at(1, 9), 15 * 7, at(22, 9)),  # "illegal structure: 15 working days"
    ],
)
def test_working_time_skips_nights_lunch_and_weekends(conn, start, hours, due):
    assert work_time_add(conn, start, hours) == due


def test_a_holiday_is_skipped_and_an_adjusted_working_saturday_is_worked(conn):
    # The 2026 Dragon Boat Festival: Friday 19 June off.
    conn.execute("INSERT INTO work_calendar_days (day, working, name) VALUES ('2026-06-19', false, '端午节')")
    assert work_time_add(conn, at(18, 16), 7) == at(22, 16)
    # 调休: Saturday 6 June worked instead of a weekday.
    conn.execute(
        "INSERT INTO work_calendar_days (day, working, name) VALUES ('2026-06-06', true, '调休上班')"
    )
    assert work_time_add(conn, at(5, 16), 7) == at(6, 16)


def test_calendar_limits_are_exact_durations_and_working_limits_use_the_calendar(conn):
    start = at(5, 16)  # a Friday afternoon
    assert effects.due_time(conn, category="safety_hazard", start=start) == start + timedelta(hours=48)
    assert effects.due_time(conn, category="sanitation", start=start) == at(8, 16)  # 1 working day
    assert effects.due_time(conn, category="dispute", start=start) == at(12, 16)  # 5 working days


def test_dispatch_and_a_default_extension_count_in_working_time(conn):
    users = people(conn)
    friday = at(5, 16)
    incident = file(conn, users["inspector1"], category="sanitation", now=friday)
    operator = users["operator1"]
    for action, now in (("accept", friday), ("dispatch", friday + timedelta(minutes=1))):
        incident = service.perform(conn, user=operator, incident_id=incident["id"], action=action, now=now)
    assert incident["due_at"] == at(8, 16, 1)  # Monday, one working day later
    assert datetime.fromisoformat(incident["events"][-1]["data"]["due_at"]) == at(8, 16, 1)
    extended = service.perform(
        conn,
        user=operator,
        incident_id=incident["id"],
        action="extend",
        now=at(8, 9),
        given=ActionInput(note="材料未到"),
    )
    assert extended["due_at"] == at(9, 16, 1) and extended["extension_count"] == 1  # one more working day
    data = extended["events"][-1]["data"]
    assert datetime.fromisoformat(data["from"]) == at(8, 16, 1)
    assert datetime.fromisoformat(data["due_at"]) == at(9, 16, 1)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_everyone_reads_the_calendar_and_only_admins_change_it(client, tokens):
    calendar = client.get("/api/v1/work-calendar", headers=bearer(tokens["inspector1"])).get_json()
    assert calendar == {
        "time_zone": "Asia/Shanghai",
        "working_weekdays": [1, 2, 3, 4, 5],
        "working_hours": ["08:30-12:00", "14:00-17:30"],
        "days": [],
    }
    for username in ("operator1", "leader1", "inspector1", "handler1"):
        headers = bearer(tokens[username])
        assert (
            client.patch("/api/v1/work-calendar", json={"time_zone": "UTC"}, headers=headers).status_code
            == 403
        )
        assert (
            client.put(
                "/api/v1/work-calendar/days/2026-10-01", json={"working": False}, headers=headers
            ).status_code
            == 403
        )


def test_an_admin_enters_holidays_and_hours_and_later_dispatches_follow(client, tokens, app):
    admin = bearer(tokens["admin1"])
    holiday = client.put(
        "/api/v1/work-calendar/days/2026-06-08", json={"working": False, "name": "测试假日"}, headers=admin
    )
    assert holiday.status_code == 200
    assert holiday.get_json() == {"date": "2026-06-08", "working": False, "name": "测试假日"}
    summer = client.patch(
        "/api/v1/work-calendar", json={"working_hours": ["15:00-18:00", "08:30-12:00"]}, headers=admin
    )
    assert summer.get_json()["working_hours"] == ["08:30-12:00", "15:00-18:00"]
    assert summer.get_json()["days"] == [{"date": "2026-06-08", "working": False, "name": "测试假日"}]

    app.extensions[CLOCK_KEY] = lambda: at(5, 17).astimezone(UTC)  # Friday 17:00
    operator = bearer(tokens["operator1"])
    filed = client.post(
        "/api/v1/incidents",
        json={"lon": OWN_POINT[0], "lat": OWN_POINT[1], "category": "sanitation"},
        headers=operator,
    ).get_json()
    client.post(f"/api/v1/incidents/{filed['id']}/actions/accept", headers=operator)
    dispatched = client.post(f"/api/v1/incidents/{filed['id']}/actions/dispatch", headers=operator).get_json()
    # Friday 17:00-18:00, Monday a holiday, Tuesday 08:30-12:00 and 15:00-17:30: 7 hours.
    assert datetime.fromisoformat(dispatched["properties"]["due_at"]) == at(9, 17, 30)

    assert client.delete("/api/v1/work-calendar/days/2026-06-08", headers=admin).status_code == 204
    assert client.delete("/api/v1/work-calendar/days/2026-06-08", headers=admin).status_code == 404
    assert client.get("/api/v1/work-calendar", headers=admin).get_json()["days"] == []


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone", 422),
        ({"time_zone": 8}, "time_zone", 400),
        ({"working_weekdays": []}, "working_weekdays", 400),
        ({"working_weekdays": [0, 1]}, "working_weekdays", 400),
        ({"working_weekdays": [True]}, "working_weekdays", 400),
        ({"working_weekdays": "1-5"}, "working_weekdays", 400),
        ({"working_hours": []}, "working_hours", 400),
        ({"working_hours": ["8:30-12:00"]}, "working_hours", 400),
        ({"working_hours": ["08:30-24:00"]}, "working_hours", 400),
        ({"working_hours": [830]}, "working_hours", 400),
        ({"working_hours": ["12:00-08:30"]}, "working_hours", 422),
        ({"working_hours": ["08:30-12:00", "11:00-17:30"]}, "working_hours", 422),
        ({"time_zone": "UTC", "working_hours": ["08:30-12:00", "11:00-17:30"]}, "working_hours", 422),
    ],
)
def test_bad_calendar_changes_name_the_field_and_change_nothing(client, tokens, body, field, status):
    admin = bearer(tokens["admin1"])
    before = client.get("/api/v1/work-calendar", headers=admin).get_json()
    response = client.patch("/api/v1/work-calendar", json=body, headers=admin)
    # The field is the path to the value: working_weekdays.0 for the first day of the list.
    assert response.status_code == status and response.get_json()["error"]["field"].split(".")[0] == field
    assert client.get("/api/v1/work-calendar", headers=admin).get_json() == before


@pytest.mark.parametrize(
    ("day", "body", "field"),
    [
        ("2026-02-30", {"working": False}, "day"),
        ("20260101", {"working": False}, "day"),
        ("2026-10-01", {}, "working"),
        ("2026-10-01", {"working": "maybe"}, "working"),
        ("2026-10-01", {"working": False, "name": "x" * 101}, "name"),
    ],
)
def test_bad_calendar_days_name_the_field(client, tokens, day, body, field):
    response = client.put(f"/api/v1/work-calendar/days/{day}", json=body, headers=bearer(tokens["admin1"]))
    assert response.status_code == 400 and response.get_json()["error"]["field"] == field


def test_a_category_switches_between_calendar_and_working_time(client, tokens):
    admin = bearer(tokens["admin1"])
    changed = client.patch(
        "/api/v1/categories/safety_hazard", json={"time_limit_unit": "working"}, headers=admin
    )
    assert changed.status_code == 200 and changed.get_json()["time_limit_unit"] == "working"
    refused = client.patch(
        "/api/v1/categories/safety_hazard", json={"time_limit_unit": "lunar"}, headers=admin
    )
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "time_limit_unit"
    units = {
        c["code"]: c["time_limit_unit"]
        for c in client.get("/api/v1/categories", headers=admin).get_json()["categories"]
    }
    assert units == {
        "safety_hazard": "working",
        "straw_burning": "calendar",
        "sanitation": "working",
        "dispute": "working",
        "public_facility": "working",
        "epidemic": "calendar",
        "resident_service": "working",
        "flood_geohazard": "calendar",
    }
