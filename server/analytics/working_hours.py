"""Working hours between two instants, as a SQL expression: the indicators' times to accept and
to close for categories whose time limit runs in working time (docs/analytics.md).

The work calendar is read once per query (server/worktime.py) and bound as three arrays over
the bounds of every working period in reach (the first day's midnight, then each period's start
and end): the bounds as instants, and for the stretch from each bound to the next, ``minus`` (the
epoch seconds that were not working time before it) and ``upto`` (the working seconds at its
end). An instant in stretch ``k`` (one ``width_bucket``, a binary search in C) has worked
``least(epoch - minus[k], upto[k])`` seconds: inside a period the epoch less what was not
worked, between periods what was worked by its end. No walk over the calendar per case.
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
from sqlalchemy import DateTime, Float, Text, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from server.demo.bulk import US_PER_SECOND
from server.worktime import WorkCalendar

# Cases reported this long before a period still get working hours (older ones: none).
REACH_BACK = timedelta(days=3 * 366)
DAY_SECONDS = 86_400
# PostgreSQL's binary formats: element type OIDs, and timestamps counted from 2000-01-01 UTC.
FLOAT8_OID, FLOAT8_ARRAY_OID, TIMESTAMPTZ_OID, TIMESTAMPTZ_ARRAY_OID = 701, 1022, 1184, 1185
POSTGRES_EPOCH_S = 946_684_800


@dataclass(frozen=True)
class WorkClock:
    # Epoch seconds: the first day's midnight, then each working period's start and end in order;
    # and the working seconds before each of these bounds.
    bounds: np.ndarray
    worked_before: np.ndarray
    categories: tuple[str, ...]  # the categories whose limits run in working time
    _params: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def read(cls, conn: psycopg.Connection, *, first: datetime, last: datetime) -> WorkClock:
        calendar = WorkCalendar.read(conn, first=first - REACH_BACK, last=last)
        # Local midnights, shifted by the zone's fixed offset (China has no daylight saving).
        midnights = (calendar.first_day + np.flatnonzero(calendar.working)) * DAY_SECONDS
        midnights = midnights - calendar.offset_us // US_PER_SECOND
        starts = calendar.starts // US_PER_SECOND
        ends = calendar.ends // US_PER_SECOND
        # (working day, period) → start, end: interleaved in time order.
        periods = np.stack([midnights[:, None] + starts, midnights[:, None] + ends], axis=-1).reshape(-1)
        # The working time from each bound to the next: a period's length at its end, else none.
        gained = np.tile(np.repeat(ends - starts, 2) * np.tile([0, 1], len(starts)), len(midnights))
        first_midnight = calendar.first_day * DAY_SECONDS - calendar.offset_us // US_PER_SECOND
        categories = (
            conn.cursor(row_factory=tuple_row)
            .execute("SELECT code FROM categories WHERE time_limit_unit = 'working' ORDER BY code")
            .fetchall()
        )
        return cls(
            bounds=np.concatenate([[first_midnight], periods]).astype(np.int64),
            worked_before=np.concatenate([[0], np.cumsum(gained)]).astype(np.int64),
            categories=tuple(code for (code,) in categories),
        )

    def values(self) -> dict:
        """The statement's values from this clock, by bind parameter name."""
        upto = np.append(self.worked_before[1:], self.worked_before[-1])  # past the last bound: all
        return {
            "clock_bounds": TimestampArray(self.bounds),
            "clock_minus": Float8Array(self.bounds - self.worked_before),
            "clock_upto": Float8Array(upto),
            "working_categories": list(self.categories),
        }

    def _param(self, name: str, type_):
        if "values" not in self._params:
            self._params["values"] = self.values()
        return bindparam(name, self._params["values"][name], type_=type_)

    def _array(self, name: str, type_):
        # A scalar subquery (an InitPlan, evaluated once per statement): a bind parameter read
        # directly made the statement 20 ms slower (by=township at 1,000,000 incidents).
        if name not in self._params:
            self._params[name] = select(self._param(f"clock_{name}", ARRAY(type_))).scalar_subquery()
        return self._params[name]

    def worked_at(self, moment):
        """Working seconds from the first day to ``moment`` (NULL before the first day). The
        stretch is looked up twice: PostgreSQL does not share an expression, and a subquery
        per case would cost more than the second binary search."""

        def stretch():
            return func.width_bucket(moment, self._array("bounds", DateTime(timezone=True)))

        epoch = func.date_part("epoch", moment)
        return func.least(
            epoch - self._array("minus", Float)[stretch()], self._array("upto", Float)[stretch()]
        )

    def counts(self, category_code):
        """Whether a case's category counts working time."""
        return category_code == any_(self._param("working_categories", ARRAY(Text)))


class _BinaryArray:
    """A one-dimensional array bind value dumped in PostgreSQL's binary format in one numpy call:
    psycopg dumps a list element by element (11 ms for the calendar's 3,000 bounds). Bound on a
    cursor from ``clock_cursor``. (Bound as text and cast, it would be cast once per row.)"""

    __slots__ = ("values",)
    element_oid: int
    dtype: str

    def __init__(self, values) -> None:
        self.values = np.asarray(values)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and np.array_equal(self.values, other.values)

    __hash__ = None

    def binary(self) -> bytes:
        # One dimension, no NULLs, the element type; the dimension's length and lower bound;
        # then each element as its length and its big-endian value.
        header = struct.pack(">5i", 1, 0, self.element_oid, len(self.values), 1)
        items = np.empty(len(self.values), dtype=[("size", ">i4"), ("value", self.dtype)])
        items["size"] = 8
        items["value"] = self.elements()
        return header + items.tobytes()

    def elements(self) -> np.ndarray:
        return self.values


class Float8Array(_BinaryArray):
    element_oid, dtype = FLOAT8_OID, ">f8"


class TimestampArray(_BinaryArray):
    """Instants given in epoch seconds."""

    element_oid, dtype = TIMESTAMPTZ_OID, ">i8"

    def elements(self) -> np.ndarray:
        return (self.values.astype(np.int64) - POSTGRES_EPOCH_S) * US_PER_SECOND


def _dumper(array_oid: int) -> type[Dumper]:
    class BinaryArrayDumper(Dumper):
        format = Format.BINARY
        oid = array_oid

        def dump(self, obj: _BinaryArray) -> bytes:
            return obj.binary()

    return BinaryArrayDumper


def clock_cursor(conn: psycopg.Connection) -> psycopg.Cursor:
    """A cursor that binds a ``WorkClock``'s values."""
    cursor = conn.cursor()
    cursor.adapters.register_dumper(Float8Array, _dumper(FLOAT8_ARRAY_OID))
    cursor.adapters.register_dumper(TimestampArray, _dumper(TIMESTAMPTZ_ARRAY_OID))
    return cursor
