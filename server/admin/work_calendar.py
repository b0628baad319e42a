"""The county's work calendar (migration 0013): working hours on working weekdays, holidays and
adjusted working days (调休). Working-time limits are counted in it (SQL ``due_time``).
Reading is open to every user; changing is for admins (the views check)."""

from __future__ import annotations

import re
from datetime import date, time

import psycopg

from server.errors import InvalidInput, NotFound, Unprocessable

_PERIOD = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")
MAX_PERIODS = 6


def get_calendar(conn: psycopg.Connection) -> dict:
    settings = conn.execute("SELECT time_zone, working_weekdays FROM work_calendar").fetchone()
    periods = conn.execute("SELECT starts, ends FROM work_periods ORDER BY starts").fetchall()
    days = conn.execute("SELECT day, working, name FROM work_calendar_days ORDER BY day").fetchall()
    return {
        "time_zone": settings["time_zone"],
        "working_weekdays": sorted(settings["working_weekdays"]),
        "working_hours": [f"{p['starts']:%H:%M}-{p['ends']:%H:%M}" for p in periods],
        "days": [{"date": d["day"].isoformat(), "working": d["working"], "name": d["name"]} for d in days],
    }


def parse_periods(values: list) -> list[tuple[time, time]]:
    """``["08:30-12:00", "14:00-17:30"]``: 1 to 6 periods in order, none overlapping."""
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_PERIODS:
        raise InvalidInput(
            f"working_hours: a list of 1 to {MAX_PERIODS} periods like '08:30-12:00'", field="working_hours"
        )
    periods = []
    for value in values:
        found = _PERIOD.match(value) if isinstance(value, str) else None
        if found is None:
            raise InvalidInput(
                f"working_hours: {str(value)[:20]!r} is not like '08:30-12:00'", field="working_hours"
            )
        hours = [int(part) for part in found.groups()]
        periods.append((time(hours[0], hours[1]), time(hours[2], hours[3])))
    periods.sort()
    for (starts, ends), following in zip(periods, periods[1:] + [None], strict=True):
        if ends <= starts:
            raise Unprocessable("working_hours: a period must end after it starts", field="working_hours")
        if following is not None and following[0] < ends:
            raise Unprocessable("working_hours: periods must not overlap", field="working_hours")
    return periods


def calendar_date(value: str, *, field: str) -> date:
    """A ``YYYY-MM-DD`` path segment as a date."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise InvalidInput(f"{field} must be YYYY-MM-DD", field=field)
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise InvalidInput(f"no such date {value}", field=field) from error


def update_calendar(
    conn: psycopg.Connection,
    *,
    time_zone: str | None = None,
    working_weekdays: list[int] | None = None,
    working_hours: list[tuple[time, time]] | None = None,
) -> dict:
    """Change what is given. Due times already set stay; later ones use the new calendar."""
    if time_zone is not None:
        known = conn.execute("SELECT 1 FROM pg_timezone_names WHERE name = %s", [time_zone]).fetchone()
        if known is None:
            raise Unprocessable(f"unknown time zone {time_zone!r}", field="time_zone")
        conn.execute("UPDATE work_calendar SET time_zone = %s", [time_zone])
    if working_weekdays is not None:
        conn.execute("UPDATE work_calendar SET working_weekdays = %s::smallint[]", [working_weekdays])
    if working_hours is not None:
        conn.execute("DELETE FROM work_periods")
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO work_periods (starts, ends) VALUES (%s, %s)", working_hours)
    return get_calendar(conn)


def set_day(conn: psycopg.Connection, *, day: date, working: bool, name: str) -> dict:
    """Mark a date as a holiday (``working=False``) or an adjusted working day (``working=True``)."""
    conn.execute(
        """INSERT INTO work_calendar_days (day, working, name) VALUES (%s, %s, %s)
           ON CONFLICT (day) DO UPDATE SET working = EXCLUDED.working, name = EXCLUDED.name""",
        [day, working, name],
    )
    return {"date": day.isoformat(), "working": working, "name": name}


def remove_day(conn: psycopg.Connection, *, day: date) -> None:
    """The date follows the weekdays again."""
    if conn.execute("DELETE FROM work_calendar_days WHERE day = %s", [day]).rowcount == 0:
        raise NotFound(f"no calendar entry for {day.isoformat()}", field="date")
