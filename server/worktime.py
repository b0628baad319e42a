"""The county's working time in numpy: what SQL `work_time_add()` (sql/functions/work_calendar.sql)
computes for one due time, for millions at once. The demo's cases of working-time categories
(a pile of garbage has "1 working day") are due, and are handled by their department, in working
time, as the live service's dispatch makes them due; the leaders' indicators count their times
to accept and to close in working hours from the same tables (server/analytics/working_hours.py).

Working time is a clock that runs only in the working periods of working days: `elapsed(t)` is
the working time before the instant t since the calendar's first day, and `add(start, amount)`
the instant when `amount` more of it has passed, found by inverting `elapsed`. Ending exactly at
a period's end gives that end (17:30), not the next morning, as in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from psycopg.rows import tuple_row

from server.demo.bulk import US_PER_SECOND

DAY_US = 86_400 * US_PER_SECOND
_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class WorkCalendar:
    offset_us: int  # the calendar's time zone, as a fixed UTC offset
    first_day: int  # local day number (days since 1970-01-01) of the table's first day
    working: np.ndarray  # (days,) bool: a working day
    cumulative: np.ndarray  # (days + 1,) working µs before the start of each day, and after the last
    starts: np.ndarray  # (periods,) µs after local midnight, sorted
    ends: np.ndarray

    @classmethod
    def build(
        cls,
        *,
        offset_us: int,
        weekdays: set[int],
        periods: list[tuple[int, int]],
        exceptions: dict[int, bool],
        first_day: int,
        last_day: int,
    ) -> WorkCalendar:
        """`weekdays`: ISO numbers (1 = Monday) of working days; `periods`: (start, end) µs after
        midnight; `exceptions`: local day number → working, overriding the weekday."""
        periods = sorted(periods)
        if not periods or not weekdays:
            raise ValueError("the work calendar has no working time: no working periods or weekdays")
        starts = np.array([start for start, _ in periods], dtype=np.int64)
        ends = np.array([end for _, end in periods], dtype=np.int64)
        days = np.arange(first_day, last_day + 1)
        iso_weekday = (days + 3) % 7 + 1  # 1970-01-01 was a Thursday (4)
        working = np.isin(iso_weekday, sorted(weekdays))
        for day, is_working in exceptions.items():
            if first_day <= day <= last_day:
                working[day - first_day] = is_working
        per_day = np.where(working, int((ends - starts).sum()), 0)
        cumulative = np.concatenate([[0], np.cumsum(per_day)]).astype(np.int64)
        return cls(offset_us, first_day, working, cumulative, starts, ends)

    @classmethod
    def read(cls, conn: psycopg.Connection, *, first: datetime, last: datetime) -> WorkCalendar:
        """The database's calendar (work_calendar, work_periods, work_calendar_days) for the days
        from `first` to `last`. The time zone's offset is taken at `last` (China has no
        daylight saving)."""
        cur = conn.cursor(row_factory=tuple_row)
        zone, weekdays = cur.execute("SELECT time_zone, working_weekdays FROM work_calendar").fetchone()
        periods = cur.execute(
            """SELECT extract(epoch FROM starts)::bigint, extract(epoch FROM ends)::bigint
                 FROM work_periods ORDER BY starts"""
        ).fetchall()
        exceptions = cur.execute("SELECT day, working FROM work_calendar_days").fetchall()
        offset = last.astimezone(ZoneInfo(zone)).utcoffset()
        offset_us = int(offset.total_seconds()) * US_PER_SECOND
        return cls.build(
            offset_us=offset_us,
            weekdays=set(weekdays),
            periods=[(start * US_PER_SECOND, end * US_PER_SECOND) for start, end in periods],
            exceptions={day.toordinal() - _EPOCH_ORDINAL: working for day, working in exceptions},
            first_day=cls._local_day(first, offset_us),
            last_day=cls._local_day(last, offset_us),
        )

    @staticmethod
    def _local_day(moment: datetime, offset_us: int) -> int:
        return (int(moment.timestamp() * US_PER_SECOND) + offset_us) // DAY_US

    def elapsed(self, times_us) -> np.ndarray:
        """Working µs from the start of the table's first day to each instant (µs since the epoch);
        instants outside the table count as its first or last moment."""
        local = np.asarray(times_us, dtype=np.int64) + self.offset_us
        day = np.clip(local // DAY_US - self.first_day, 0, len(self.working) - 1)
        time_of_day = np.clip(local - (day + self.first_day) * DAY_US, 0, DAY_US)
        before = local < self.first_day * DAY_US
        after = local >= (self.first_day + len(self.working)) * DAY_US
        within = np.clip(time_of_day[..., None] - self.starts, 0, self.ends - self.starts).sum(axis=-1)
        result = self.cumulative[day] + np.where(self.working[day], within, 0)
        return np.where(before, 0, np.where(after, self.cumulative[-1], result))

    def add(self, start_us, amount_us) -> np.ndarray:
        """The instant when `amount_us` of working time has passed after `start_us` (never before
        `start_us`; at the table's end at the latest)."""
        start_us = np.asarray(start_us, dtype=np.int64)
        target = np.minimum(
            self.elapsed(start_us) + np.asarray(amount_us, dtype=np.int64), self.cumulative[-1]
        )
        ends_of_days = self.cumulative[1:]
        day = np.minimum(np.searchsorted(ends_of_days, target, side="left"), len(self.working) - 1)
        into_day = target - self.cumulative[day]
        period_ends = np.cumsum(self.ends - self.starts)
        period = np.minimum(np.searchsorted(period_ends, into_day, side="left"), len(self.starts) - 1)
        into_period = into_day - (period_ends[period] - (self.ends - self.starts)[period])
        local = (day + self.first_day) * DAY_US + self.starts[period] + into_period
        return np.maximum(local - self.offset_us, start_us)
