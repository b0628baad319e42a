"""Reporting periods: [start, end) in local dates of the work calendar's time zone, seen at
``as_of``; and the period a comparison looks at (the one before, or a year earlier)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from server.errors import InvalidInput

PREVIOUS, LAST_YEAR = "previous", "last_year"
MAX_DAYS = 3 * 366 + 1


def calendar_zone(conn: psycopg.Connection) -> ZoneInfo:
    """The work calendar's time zone (``work_calendar``): where a bulletin's days begin."""
    return ZoneInfo(conn.execute("SELECT time_zone FROM work_calendar").fetchone()["time_zone"])


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months; a day the target month lacks becomes its last day."""
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # exclusive
    as_of: datetime  # aware
    zone: ZoneInfo

    @classmethod
    def of(cls, *, start: date | None, end: date | None, as_of: datetime, zone: ZoneInfo) -> Period:
        """The period asked for; without dates, the month of ``as_of`` so far."""
        as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=zone)
        today = as_of.astimezone(zone).date()
        if start is None:
            start = add_months(end, -1) if end else today.replace(day=1)
        if end is None:
            end = add_months(start, 1)
        if end <= start:
            raise InvalidInput("to must be after from", field="to")
        if (end - start).days > MAX_DAYS:
            raise InvalidInput("a period spans at most three years", field="to")
        return cls(start, end, as_of, zone)

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time(), self.zone)

    @property
    def ends_at(self) -> datetime:
        return datetime.combine(self.end, time(), self.zone)

    @property
    def whole_months(self) -> int | None:
        """How many calendar months the period is, when it is whole months."""
        if self.start.day != 1 or self.end.day != 1:
            return None
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month

    def compared(self, kind: str) -> Period:
        """The period ``kind`` compares with, seen as long after its end as this one is (a
        bulletin drawn up on 3 December for November compares with October seen on 3 November)."""
        if kind == LAST_YEAR:
            months = 12
        elif self.whole_months:
            months = self.whole_months
        else:
            days = (self.end - self.start).days
            shift = timedelta(days=days)
            return Period(self.start - shift, self.end - shift, self.as_of - shift, self.zone)
        start, end = add_months(self.start, -months), add_months(self.end, -months)
        local = self.as_of.astimezone(self.zone)
        moved_day = add_months(local.date(), -months)
        as_of = datetime.combine(moved_day, local.timetz())
        return Period(start, end, as_of, self.zone)

    def describe(self) -> dict:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "as_of": self.as_of.astimezone(self.zone).isoformat(timespec="seconds"),
            "time_zone": self.zone.key,
        }
