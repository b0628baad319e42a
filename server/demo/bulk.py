"""Binary COPY of numpy columns: the fast path for millions of generated rows.

When every field of a batch has a fixed width, the whole batch is one numpy structured array in
PostgreSQL's binary COPY layout (per row: the field count, then per field its length and value)
written with one `tobytes()`. A field is one of:

- a numeric numpy array with a type from `WIRE_TYPES` (big-endian on the wire);
- `Constant(payload)`: the same encoded value on every row, or NULL when `payload` is None;
- `Points(xy)`: an (n, 2) array of lon/lat written as EWKB points in EPSG:4326;
- a numpy bytes array (dtype "S<k>") of encoded values all k bytes long (text, jsonb).

Missing timestamps are `NEVER` (PostgreSQL's 'infinity'), so rows stay fixed-width; SQL that
reads a staging table turns 'infinity' into NULL. Rows that differ in a text field (say, the
action of an event) go in separate batches, one per distinct value.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

# Microseconds since the Unix epoch: the demo's time unit. PostgreSQL counts from 2000-01-01.
US_PER_SECOND = 1_000_000
_PG_EPOCH_US = 946_684_800 * US_PER_SECOND
NEVER = np.iinfo(np.int64).max  # binary 'infinity' for timestamptz

WIRE_TYPES = {
    "smallint": ">i2",
    "integer": ">i4",
    "bigint": ">i8",
    "double precision": ">f8",
    "boolean": "u1",
    "timestamptz": ">i8",
}
_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_TRAILER = (-1).to_bytes(2, "big", signed=True)
_BATCH_ROWS = 250_000
_EWKB_POINT_WITH_SRID = 0x20000001


@dataclass(frozen=True)
class Constant:
    payload: bytes | None  # binary-format value; None is NULL

    @classmethod
    def text(cls, value: str | None) -> Constant:
        return cls(None if value is None else value.encode())

    @classmethod
    def jsonb(cls, value: str | None) -> Constant:
        return cls(None if value is None else b"\x01" + value.encode())  # jsonb binary format 1


@dataclass(frozen=True)
class Points:
    xy: np.ndarray  # (n, 2) lon, lat


Column = np.ndarray | Constant | Points


def _layout(kind: str, values: Column, number: int) -> list[tuple[str, str]]:
    length = [(f"length{number}", ">i4")]
    if isinstance(values, Constant):
        return length if values.payload is None else length + [(f"value{number}", f"S{len(values.payload)}")]
    if isinstance(values, Points):
        return length + [
            (f"order{number}", "u1"),
            (f"type{number}", "<u4"),
            (f"srid{number}", "<u4"),
            (f"x{number}", "<f8"),
            (f"y{number}", "<f8"),
        ]
    if values.dtype.kind == "S":
        if (np.char.str_len(values) != values.dtype.itemsize).any():
            raise ValueError(f"column {number}: encoded values differ in length")
        return length + [(f"value{number}", values.dtype.str)]
    if kind not in WIRE_TYPES:
        raise ValueError(f"no binary layout for {kind}")
    return length + [(f"value{number}", WIRE_TYPES[kind])]


def _fill(batch: np.ndarray, kind: str, values: Column, number: int, rows: slice) -> None:
    length = f"length{number}"
    if isinstance(values, Constant):
        if values.payload is None:
            batch[length] = -1
        else:
            batch[length] = len(values.payload)
            batch[f"value{number}"] = values.payload
    elif isinstance(values, Points):
        batch[length] = 25
        batch[f"order{number}"] = 1  # little-endian
        batch[f"type{number}"] = _EWKB_POINT_WITH_SRID
        batch[f"srid{number}"] = 4326
        batch[f"x{number}"] = values.xy[rows, 0]
        batch[f"y{number}"] = values.xy[rows, 1]
    elif values.dtype.kind == "S":
        batch[length] = values.dtype.itemsize
        batch[f"value{number}"] = values[rows]
    else:
        batch[length] = np.dtype(WIRE_TYPES[kind]).itemsize
        part = values[rows]
        if kind == "timestamptz":
            part = np.where(part == NEVER, NEVER, part.astype(np.int64) - _PG_EPOCH_US)
        batch[f"value{number}"] = part


def _row_count(columns: dict[str, tuple[str, Column]]) -> int:
    lengths = {
        len(v.xy) if isinstance(v, Points) else len(v)
        for _, v in columns.values()
        if not isinstance(v, Constant)
    }
    if len(lengths) != 1:
        raise ValueError(f"columns differ in length (or none has one): {sorted(lengths)}")
    return lengths.pop()


def copy_batches(
    conn: psycopg.Connection, table: str, batches: Iterable[dict[str, tuple[str, Column]]]
) -> int:
    """COPY several batches with the same column names (name → (type, values)) into `table`
    in one COPY. Returns the row count."""
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return 0
    names = list(first)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    total = 0
    with conn.cursor().copy(statement) as copy:
        copy.write(_HEADER)
        for columns in itertools.chain([first], batches):
            if list(columns) != names:
                raise ValueError(f"batch columns {list(columns)} differ from {names}")
            rows = _row_count(columns)
            layout = [("fields", ">i2")]
            for number, (kind, values) in enumerate(columns.values()):
                layout += _layout(kind, values, number)
            for start in range(0, rows, _BATCH_ROWS):
                part = slice(start, min(rows, start + _BATCH_ROWS))
                batch = np.empty(part.stop - part.start, dtype=np.dtype(layout))
                batch["fields"] = len(columns)
                for number, (kind, values) in enumerate(columns.values()):
                    _fill(batch, kind, values, number, part)
                copy.write(batch.tobytes())
            total += rows
        copy.write(_TRAILER)
    return total


def copy_arrays(conn: psycopg.Connection, table: str, columns: dict[str, tuple[str, Column]]) -> int:
    """COPY equal-length columns (name → (type, values)) into `table`. Returns the row count."""
    return copy_batches(conn, table, [columns])


def create_stage(conn: psycopg.Connection, table: str, columns: dict[str, str]) -> None:
    """A temporary table (dropped at commit) with the given column name → numeric type."""
    unknown = set(columns.values()) - set(WIRE_TYPES)
    if unknown:
        raise ValueError(f"no binary layout for {sorted(unknown)}")
    definition = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type)) for name, pg_type in columns.items()
    )
    statement = sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP")
    conn.execute(statement.format(sql.Identifier(table), definition))
