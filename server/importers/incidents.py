"""Import incidents from CSV (one row per incident, ``lon``/``lat`` columns) or GeoJSON points.

Columns (CSV header, or GeoJSON ``properties``; docs/importing.md is the user's guide):

- ``lon``, ``lat`` (CSV only; GeoJSON uses the Point): WGS84 (or CGCS2000) degrees, or GCJ-02 with
  ``crs="gcj02"`` (points picked on a Gaode/Tencent map, off by hundreds of metres until converted).
- ``category`` (required): a category code that exists (``safety_hazard``, ``sanitation``, ...).
- ``description``, ``reported_at`` (ISO 8601; without an offset it is China Standard Time, UTC+8;
  default: now), ``channel`` (default ``import``), ``priority`` (default: the category's),
  ``accuracy_m`` (GPS accuracy in metres): optional.

Any other column fails the import: a misspelt optional column would otherwise be dropped silently.

Each incident is filed in the finest grid that covers it (``grid_at``, sql/functions/grids.sql) with status
``reported`` and one ``report`` event whose ``data`` names the file and the row (and ``crs`` when
the coordinates were converted, as the filing API does). A point outside
every grid fails the import. Rows are numbered as a spreadsheet shows them (the header is row 1);
GeoJSON features from 1.

Rows are checked while they stream into a temporary table (COPY); categories and grids are then
checked, and the incidents and their events written, with set-based SQL (the grids of all points
in one spatial join, with ``grid_at``'s rule for points on shared edges) inside
``conn.transaction()`` (a savepoint when the caller has a transaction open). Any problem raises
:class:`server.errors.ImportFailed` and leaves the database unchanged.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import tuple_row

from server.coords import gcj02_to_wgs84
from server.errors import ImportFailed
from server.importers.problems import BadValue, Problems

# China has kept UTC+8 without daylight saving since 1991.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")

CHANNELS = ("app", "hotline_12345", "hotline_110", "wechat", "open311", "import")
PRIORITIES = ("low", "normal", "high", "urgent")
PROPERTIES = ("category", "description", "reported_at", "channel", "priority", "accuracy_m")
CSV_COLUMNS = ("lon", "lat", *PROPERTIES)
COORDINATE_SYSTEMS = ("wgs84", "gcj02")
CHUNK_ROWS = 10_000  # rows checked and converted together before they are copied
MAX_DESCRIPTION = 4000
MAX_ACCURACY_M = 100_000


@dataclass(frozen=True)
class Record:
    """One row or feature as read: where it is in the file, its point and its properties."""

    number: int
    where: str  # "row 7", "feature 3"
    lon: Any
    lat: Any
    properties: dict[str, Any]


def import_incidents(conn: psycopg.Connection, *, path: Path, crs: str = "wgs84") -> int:
    """Add the incidents in ``path``; return how many were added.

    ``crs`` says what the coordinates are: ``wgs84`` (also right for CGCS2000), or ``gcj02`` for
    points picked on a Gaode/Tencent map, converted to WGS84 here (server.coords).
    """
    path = Path(path)
    if crs not in COORDINATE_SYSTEMS:
        raise ImportFailed(f"unknown coordinates {crs!r}; use {' or '.join(COORDINATE_SYSTEMS)}", field="crs")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records, unit = _csv_records(path), "row"
    elif suffix in (".geojson", ".json"):
        records, unit = _geojson_records(path), "feature"
    else:
        raise ImportFailed(f"{path.name}: incidents are imported from .csv or .geojson files", field="path")

    problems = Problems(path.name)
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(STAGE)
        with cursor.copy(COPY_STAGE) as copy:
            for chunk in _chunks(records):
                rows = []
                for record in chunk:
                    try:
                        rows.append(_checked(record))
                    except BadValue as problem:
                        problems.add(record.where, problem.field, problem.reason)
                for row in _with_wgs84(rows, crs=crs):
                    copy.write_row(row)
        problems.raise_if_any()

        for number, category in cursor.execute(UNKNOWN_CATEGORIES).fetchall():
            problems.add(f"{unit} {number}", "category", f"no category has the code {category!r}")
        # Temporary tables are never analysed by autovacuum; the grid join needs the numbers.
        cursor.execute("CREATE INDEX ON incident_import USING gist (geom)")
        cursor.execute("ANALYZE incident_import")
        cursor.execute(FIND_GRIDS)
        for number, lon, lat in cursor.execute(OUTSIDE_GRIDS).fetchall():
            problems.add(f"{unit} {number}", "geometry", f"the point ({lon}, {lat}) is outside every grid")
        problems.raise_if_any()

        cursor.execute(ASSIGN_IDS)
        count = cursor.execute(INSERT_INCIDENTS).rowcount
        cursor.execute(
            INSERT_EVENTS, {"file": path.name, "unit": unit, "crs": None if crs == "wgs84" else crs}
        )
        cursor.execute("DROP TABLE incident_import, incident_grid, incident_new")
    return count


# -- reading ----------------------------------------------------------------------------


def _csv_records(path: Path) -> Iterator[Record]:
    # utf-8-sig: spreadsheets often write a byte-order mark.
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            header = reader.fieldnames or []
            _check_columns(path, header, allowed=CSV_COLUMNS, required=("lon", "lat", "category"))
            for values in reader:
                properties = {key: values[key] for key in PROPERTIES if key in values}
                if None in values:
                    properties["_extra"] = values[None]
                yield Record(
                    reader.line_num, f"row {reader.line_num}", values["lon"], values["lat"], properties
                )
    except UnicodeDecodeError as error:
        raise ImportFailed(
            f"{path.name} is not UTF-8 text ({error.reason} at byte {error.start}): save it as "
            "UTF-8 CSV (a GBK/GB18030 export must be converted first)",
            field="path",
        ) from error


def _geojson_records(path: Path) -> Iterator[Record]:
    try:
        with path.open("rb") as file:
            document = json.load(file)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ImportFailed(f"{path.name} is not valid GeoJSON: {error}", field="path") from error
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ImportFailed(f"{path.name} is not a GeoJSON FeatureCollection", field="path")
    if document.get("crs") is not None:
        raise ImportFailed(
            f"{path.name} declares a crs: incidents must be in WGS84 longitude/latitude (RFC 7946)",
            field="crs",
        )
    features = document.get("features") or []
    names = {
        key for feature in features if isinstance(feature, dict) for key in feature.get("properties") or {}
    }
    _check_columns(path, sorted(names), allowed=PROPERTIES, required=())
    for index, feature in enumerate(features):
        where = f"feature {index + 1}"
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Point":
            lon = lat = _NotAPoint(geometry)
        else:
            coordinates = geometry.get("coordinates")
            lon, lat = (coordinates[0], coordinates[1]) if _is_pair(coordinates) else (None, None)
        yield Record(index + 1, where, lon, lat, dict(feature.get("properties") or {}))


@dataclass(frozen=True)
class _NotAPoint:
    geometry: Any


def _is_pair(coordinates: Any) -> bool:
    return isinstance(coordinates, list) and len(coordinates) in (2, 3)


def _check_columns(
    path: Path, header: list[str], *, allowed: tuple[str, ...], required: tuple[str, ...]
) -> None:
    unknown = [name for name in header if name not in allowed]
    if unknown:
        raise ImportFailed(
            f"{path.name}: unknown column {unknown[0]!r}; the columns are {', '.join(allowed)}",
            field=unknown[0],
        )
    missing = [name for name in required if name not in header]
    if missing:
        raise ImportFailed(f"{path.name}: the column {missing[0]!r} is missing", field=missing[0])


def _chunks(records: Iterator[Record]) -> Iterator[list[Record]]:
    while chunk := list(itertools.islice(records, CHUNK_ROWS)):
        yield chunk


def _with_wgs84(rows: list[tuple], *, crs: str) -> list[tuple]:
    """Append the WGS84 longitude and latitude to each checked row (vectorised per chunk)."""
    if not rows:
        return rows
    lon = np.array([row[1] for row in rows])
    lat = np.array([row[2] for row in rows])
    if crs == "gcj02":
        lon, lat = gcj02_to_wgs84(lon, lat)
    return [(*row, float(x), float(y)) for row, x, y in zip(rows, lon, lat, strict=True)]


# -- one record at a time -----------------------------------------------------------------


def _checked(record: Record) -> tuple:
    """The record as a row of the staging table; BadValue when a value is unusable."""
    p = record.properties
    if "_extra" in p:
        raise BadValue("row", f"more values than columns: {p['_extra']!r}")
    if isinstance(record.lon, _NotAPoint):
        kind = record.lon.geometry.get("type") if isinstance(record.lon.geometry, dict) else None
        raise BadValue("geometry", f"a {kind} is not a Point" if kind else "no geometry")
    description = _text(p.get("description")) or ""
    if len(description) > MAX_DESCRIPTION:
        raise BadValue("description", f"the description is longer than {MAX_DESCRIPTION} characters")
    category = _text(p.get("category"))
    if category is None:
        raise BadValue("category", "the category is missing")
    channel = _text(p.get("channel")) or "import"
    if channel not in CHANNELS:
        raise BadValue("channel", f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    priority = _text(p.get("priority"))
    if priority is not None and priority not in PRIORITIES:
        raise BadValue("priority", f"unknown priority {priority!r}; use one of {', '.join(PRIORITIES)}")
    accuracy = _number(p.get("accuracy_m"), "accuracy_m", low=0, high=MAX_ACCURACY_M)
    return (
        record.number,
        _number(record.lon, "lon", low=-180, high=180, required=True),
        _number(record.lat, "lat", low=-90, high=90, required=True),
        category,
        description,
        _reported_at(p.get("reported_at")),
        channel,
        priority,
        accuracy,
    )


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def _number(raw: Any, field: str, *, low: float, high: float, required: bool = False) -> float | None:
    text = _text(raw)
    if text is None:
        if required:
            raise BadValue(field, f"{field} is missing")
        return None
    try:
        number = float(text)
    except ValueError:
        raise BadValue(field, f"{field} must be a number, not {text!r}") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise BadValue(field, f"{field} must be between {low} and {high}, not {text}")
    return number


def _reported_at(raw: Any) -> datetime | None:
    text = _text(raw)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("/", "-"))
    except ValueError:
        raise BadValue(
            "reported_at", f"reported_at {text!r} is not a date and time like 2026-06-01 08:30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA_STANDARD_TIME)
    if moment > datetime.now(UTC):
        raise BadValue("reported_at", f"reported_at {text} is in the future")
    return moment


# -- SQL ------------------------------------------------------------------------------------

STAGE = """
CREATE TEMPORARY TABLE incident_import (
    number integer NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    category text NOT NULL,
    description text NOT NULL,
    reported_at timestamptz,
    channel text NOT NULL,
    priority text,
    accuracy_m real,
    wgs84_lon double precision NOT NULL,
    wgs84_lat double precision NOT NULL,
    geom geometry(Point, 4326)
        GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(wgs84_lon, wgs84_lat), 4326)) STORED
)
"""

COPY_STAGE = """
COPY incident_import (number, lon, lat, category, description, reported_at, channel, priority, accuracy_m,
                      wgs84_lon, wgs84_lat)
FROM STDIN
"""

UNKNOWN_CATEGORIES = """
SELECT s.number, s.category
  FROM incident_import s
 WHERE NOT EXISTS (SELECT 1 FROM categories c WHERE c.code = s.category)
 ORDER BY s.number
"""

# The grid of every point at once, by grid_at's rule (sql/functions/grids.sql): the deepest grid that
# covers the point, boundary included, and on an edge or vertex shared by grids of that depth the
# one with the smallest code. Driven from the grids, each grid's polygon is prepared once for all
# the points in its box instead of once per point and grid.
FIND_GRIDS = """
CREATE TEMPORARY TABLE incident_grid AS
SELECT DISTINCT ON (s.number) s.number, g.id AS grid_id
  FROM grids g
  JOIN grid_levels l USING (level)
  JOIN incident_import s ON s.geom && g.geom AND ST_Covers(g.geom, s.geom)
 ORDER BY s.number, l.depth DESC, g.code
"""

OUTSIDE_GRIDS = """
SELECT s.number, s.lon, s.lat
  FROM incident_import s
 WHERE NOT EXISTS (SELECT 1 FROM incident_grid f WHERE f.number = s.number)
 ORDER BY s.number
"""

# Ids are drawn here, in file order, once the file is known to be good, so that each event can name
# its incident and its row. (nextval in a sorted select runs after the sort.)
ASSIGN_IDS = """
CREATE TEMPORARY TABLE incident_new AS
SELECT number, grid_id, nextval(pg_get_serial_sequence('incidents', 'id')) AS incident_id
  FROM incident_grid
 ORDER BY number
"""

INSERT_INCIDENTS = """
INSERT INTO incidents (id, geom, accuracy_m, grid_id, category_code, description, channel,
                       status, priority, reported_at)
SELECT n.incident_id, s.geom, s.accuracy_m, n.grid_id, s.category, s.description, s.channel,
       'reported', coalesce(s.priority, c.default_priority), coalesce(s.reported_at, now())
  FROM incident_new n
  JOIN incident_import s USING (number)
  JOIN categories c ON c.code = s.category
 ORDER BY n.incident_id
"""

INSERT_EVENTS = """
INSERT INTO incident_events (incident_id, at, action, from_status, to_status, data)
SELECT n.incident_id, coalesce(s.reported_at, now()), 'report', NULL, 'reported',
       jsonb_strip_nulls(jsonb_build_object('file', %(file)s::text, %(unit)s::text, s.number,
                                            'crs', %(crs)s::text))
  FROM incident_new n
  JOIN incident_import s USING (number)
 ORDER BY n.incident_id
"""
