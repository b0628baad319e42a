"""Working hours between two instants, as a SQL expression: the indicators' times to accept and
to close for categories whose time limit runs in working time (docs/analytics.md).

The work calendar is read once per query (server/worktime.py) and bound as arrays: the working
seconds before each day, whether each day is a working day, and the bounds of the working
periods with the working seconds of the day before each bound. A case's working time is then a
few array look-ups (``width_bucket`` finds the period), not a walk over the calendar per case.
PostgreSQL has no working-time arithmetic and no library does this in SQL, so it is written
here; tests check it against a day-by-day count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import tuple_row
from sqlalchemy import Float, Integer, cast, false, func, literal
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import Grouping

from server.demo.bulk import US_PER_SECOND
from server.worktime import WorkCalendar

# Cases reported this long before a period still get working hours (older ones: NULL).
REACH_BACK = timedelta(days=3 * 366)


@dataclass(frozen=True)
class WorkClock:
    offset_seconds: int  # the calendar's time zone as a fixed offset (China has no daylight saving)
    first_day: int  # local day number (days since 1970-01-01) of the first day
    before: list[float]  # working seconds before each day, from first_day
    working: list[bool]
    bounds: list[float]  # seconds after local midnight: each period's start and end, in order
    at_bounds: list[float]  # working seconds of a working day before each bound
    categories: tuple[str, ...]  # the categories whose limits run in working time
    _params: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def read(cls, conn: psycopg.Connection, *, first: datetime, last: datetime) -> WorkClock:
        calendar = WorkCalendar.read(conn, first=first - REACH_BACK, last=last)
        starts = [int(s) / US_PER_SECOND for s in calendar.starts]
        ends = [int(e) / US_PER_SECOND for e in calendar.ends]
        bounds, at_bounds, worked = [], [], 0.0
        for start, end in zip(starts, ends, strict=True):
            bounds += [start, end]
            at_bounds += [worked, worked + end - start]
            worked += end - start
        categories = (
            conn.cursor(row_factory=tuple_row)
            .execute("SELECT code FROM categories WHERE time_limit_unit = 'working' ORDER BY code")
            .fetchall()
        )
        return cls(
            offset_seconds=calendar.offset_us // US_PER_SECOND,
            first_day=calendar.first_day,
            before=[int(c) / US_PER_SECOND for c in calendar.cumulative[:-1]],
            working=[bool(w) for w in calendar.working],
            bounds=bounds,
            at_bounds=at_bounds,
            categories=tuple(code for (code,) in categories),
        )

    def _array(self, name: str, values: list, item_type):
        # One bind parameter per array, however often the statement reads it; in parentheses,
        # since PostgreSQL reads `$1::float[][i]` as a cast to a two-dimensional array.
        if name not in self._params:
            self._params[name] = Grouping(literal(values, ARRAY(item_type)))
        return self._params[name]

    def local_seconds(self, moment):
        """``moment`` as seconds since 1970-01-01 00:00 local time: the epoch shifted by the
        zone's offset, as in server/worktime.py."""
        return func.date_part("epoch", moment) + self.offset_seconds

    def worked(self, local):
        """Working seconds from the start of the first day to the instant ``local`` (from
        ``local_seconds``; NULL outside the calendar's days). ``local`` is read several times:
        pass a column, so that PostgreSQL does not compute the instant again for each read."""
        day_number = func.floor(local / 86400.0)
        day = cast(day_number, Integer) - (self.first_day - 1)
        time_of_day = local - day_number * 86400.0
        bounds = self._array("bounds", [0.0, *self.bounds], Float)
        at_bounds = self._array("at_bounds", [0.0, *self.at_bounds], Float)
        # 1 before the first period, then 2k inside period k and 2k + 1 after it.
        bucket = func.width_bucket(time_of_day, bounds)
        inside = (bucket + 1) % 2
        within_day = at_bounds[bucket] + inside * (time_of_day - bounds[bucket])
        before = self._array("before", self.before, Float)
        working = self._array("working", [1.0 if w else 0.0 for w in self.working], Float)
        return before[day] + working[day] * within_day

    def hours_between(self, local_start, local_end):
        return (self.worked(local_end) - self.worked(local_start)) / 3600.0

    def counts(self, category_code):
        """Whether a case's category counts working time."""
        return category_code.in_(self.categories) if self.categories else false()
