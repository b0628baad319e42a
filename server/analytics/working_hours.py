"""Working hours between two instants, as a SQL expression: the indicators' times to accept and
to close for categories whose time limit runs in working time (docs/analytics.md).

The work calendar is read once per query (server/worktime.py) and bound as two arrays: the
start and end of every working period of every working day in reach, in local seconds, and the
working seconds before each of them. An instant's working time is then one ``width_bucket``
(a binary search in C) and two array look-ups, not a walk over the calendar per case.
PostgreSQL has no working-time arithmetic and no library does this in SQL, so it is written
here; tests check it against a day-by-day count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.rows import tuple_row
from sqlalchemy import Float, Integer, Text, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from server.demo.bulk import US_PER_SECOND
from server.worktime import WorkCalendar

# Cases reported this long before a period still get working hours (older ones: none).
REACH_BACK = timedelta(days=3 * 366)
DAY_SECONDS = 86_400
FLOAT8_OID, FLOAT8_ARRAY_OID = 701, 1022


@dataclass(frozen=True)
class WorkClock:
    offset_seconds: int  # the calendar's time zone as a fixed offset (China has no daylight saving)
    # Local seconds since 1970-01-01: the first day's midnight, then each working period's start
    # and end in order; and the working seconds before each of these bounds.
    bounds: list[float]
    worked_before: list[float]
    categories: tuple[str, ...]  # the categories whose limits run in working time
    _params: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def read(cls, conn: psycopg.Connection, *, first: datetime, last: datetime) -> WorkClock:
        calendar = WorkCalendar.read(conn, first=first - REACH_BACK, last=last)
        midnights = (calendar.first_day + np.flatnonzero(calendar.working)) * DAY_SECONDS
        starts = calendar.starts // US_PER_SECOND
        ends = calendar.ends // US_PER_SECOND
        # (working day, period) → start, end: interleaved in time order.
        periods = np.stack([midnights[:, None] + starts, midnights[:, None] + ends], axis=-1).reshape(-1)
        # The working time from each bound to the next: a period's length at its end, else none.
        gained = np.tile(np.repeat(ends - starts, 2) * np.tile([0, 1], len(starts)), len(midnights))
        worked = np.cumsum(gained)
        categories = (
            conn.cursor(row_factory=tuple_row)
            .execute("SELECT code FROM categories WHERE time_limit_unit = 'working' ORDER BY code")
            .fetchall()
        )
        return cls(
            offset_seconds=calendar.offset_us // US_PER_SECOND,
            bounds=[float(calendar.first_day * DAY_SECONDS), *periods.astype(float).tolist()],
            worked_before=[0.0, *worked.astype(float).tolist()],
            categories=tuple(code for (code,) in categories),
        )

    def values(self) -> dict:
        """The statement's values from this clock, by bind parameter name."""
        return {
            "clock_bounds": Float8Array(self.bounds),
            "clock_worked_before": Float8Array(self.worked_before),
            "clock_offset_s": self.offset_seconds,
            "working_categories": list(self.categories),
        }

    def _param(self, name: str, type_):
        if "values" not in self._params:
            self._params["values"] = self.values()
        return bindparam(name, self._params["values"][name], type_=type_)

    def _array(self, name: str):
        # A scalar subquery (an InitPlan, evaluated once per statement): a bind parameter read
        # directly made the statement 20 ms slower (by=township at 1,000,000 incidents).
        if name not in self._params:
            self._params[name] = select(self._param(f"clock_{name}", ARRAY(Float))).scalar_subquery()
        return self._params[name]

    def local_seconds(self, moment):
        """``moment`` as seconds since 1970-01-01 00:00 local time: the epoch shifted by the
        zone's offset, as in server/worktime.py."""
        return func.date_part("epoch", moment) + self._param("clock_offset_s", Integer)

    def bucket(self, local):
        """Where ``local`` falls among the bounds: 1 before the first period, even inside one."""
        return func.width_bucket(local, self._array("bounds"))

    def worked(self, local, bucket):
        """Working seconds from the first day to the instant ``local`` in ``bucket``."""
        inside = (bucket + 1) % 2
        return self._array("worked_before")[bucket] + inside * (local - self._array("bounds")[bucket])

    def worked_at(self, moment):
        """Working seconds from the first day to ``moment``, in one expression. Its local time and
        bucket are written out again where read: measured as fast as a column each, with half
        the columns."""
        local = self.local_seconds(moment)
        return self.worked(local, self.bucket(local))

    def counts(self, category_code):
        """Whether a case's category counts working time."""
        return category_code == any_(self._param("working_categories", ARRAY(Text)))


class Float8Array:
    """A float8[] bind value. psycopg dumps a list element by element (11 ms for the calendar's
    3,000 bounds); this one is dumped in PostgreSQL's binary array format in one numpy call, on a
    cursor from ``clock_cursor``. (Bound as text and cast, it would be cast once per row.)"""

    __slots__ = ("values",)

    def __init__(self, values) -> None:
        self.values = np.asarray(values, dtype=">f8")

    def __eq__(self, other) -> bool:
        return isinstance(other, Float8Array) and np.array_equal(self.values, other.values)

    __hash__ = None


class _Float8ArrayDumper(Dumper):
    format = Format.BINARY
    oid = FLOAT8_ARRAY_OID

    def dump(self, obj: Float8Array) -> bytes:
        # Header: one dimension, no NULLs, element type; the dimension's length and lower bound;
        # then each element as its length and its big-endian value.
        header = struct.pack(">5i", 1, 0, FLOAT8_OID, len(obj.values), 1)
        items = np.empty(len(obj.values), dtype=[("size", ">i4"), ("value", ">f8")])
        items["size"] = 8
        items["value"] = obj.values
        return header + items.tobytes()


def clock_cursor(conn: psycopg.Connection) -> psycopg.Cursor:
    """A cursor that binds a ``WorkClock``'s values."""
    cursor = conn.cursor()
    cursor.adapters.register_dumper(Float8Array, _Float8ArrayDumper)
    return cursor
