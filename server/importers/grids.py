"""Import a grid tree (or a branch of one) from GeoJSON, GeoPackage or Shapefile.

Each feature is one grid: a code, a Chinese name, optionally an English name, the code of its
parent, its level, households and population, and a (multi)polygon. How a file's columns map to
these attributes is a :class:`GridFieldMap`; docs/importing.md is the user's guide.

Decisions:

- **Existing codes are refused, never updated.** Incidents and patrols point at grids, and an
  incident's grid was decided when it was reported; an import that silently reshaped or moved an
  existing grid would leave history in grids that no longer contain it. An import therefore only
  adds grids: a code already in the database fails the import, naming the feature. A branch can be
  added under grids already in the database (the parent code may be in the file or the database).
- **Invalid geometry is refused, never repaired.** Automatic repair (``make_valid``) changes the
  shape the county drew, and the partition must stay seamless; the message says what is wrong and
  where, so the fix is made in the source GIS.
- **The CRS must be known.** Coordinates are reprojected to EPSG:4326 from the file's CRS, or from
  ``source_crs`` when the file declares none (or a wrong one). A file without a CRS, or with one
  PROJ does not know, fails. GeoJSON without a ``crs`` member is WGS84 (RFC 7946).
- **Level** comes from the level attribute (English level names or the Chinese ones, see
  ``LEVEL_NAMES``); where a feature has none, it is one below its parent (a feature without a
  parent is the county). A child must sit strictly below its parent's level; levels may be skipped
  (a grid directly under a township).
- **The partition is checked** in PostGIS before anything is written (server/importers/topology.py):
  a child outside its parent or overlapping a sibling fails the import; a gap between siblings is a
  warning, or an error with ``strict``.
- Features are numbered from 1 in file order; every message names the feature by number and code.

The whole file is read and checked, staged with COPY into a temporary table, checked there against
the tree, then written with set-based SQL (one INSERT ... SELECT per level) inside
``conn.transaction()``: a savepoint when the caller has a transaction open, otherwise a transaction
of its own. Any problem
raises :class:`server.errors.ImportFailed` and leaves the database unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg.rows import tuple_row
from shapely.geometry import MultiPolygon, Polygon
from shapely.validation import explain_validity

from server.errors import ImportFailed
from server.importers.geofile import GeoFile, read_geofile
from server.importers.problems import BadValue, Problem, Problems
from server.importers.topology import check_topology

LEVEL_DEPTHS = {"county": 1, "township": 2, "village": 3, "grid": 4, "microgrid": 5}
LEVEL_BY_DEPTH = {depth: level for level, depth in LEVEL_DEPTHS.items()}

# Accepted spellings of each level, compared after strip() and lower().
LEVEL_NAMES = {
    **{level: level for level in LEVEL_DEPTHS},
    "micro-grid": "microgrid",
    "street": "township",
    "community": "village",
    "县": "county",
    "区": "county",
    "县/区": "county",
    "乡": "township",
    "镇": "township",
    "乡镇": "township",
    "街道": "township",
    "乡镇/街道": "township",
    "村": "village",
    "社区": "village",
    "村/社区": "village",
    "网格": "grid",
    "微网格": "microgrid",
}

CODE_CHARACTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_CODE_LENGTH = 40
MAX_COUNT = 2**31 - 1


@dataclass(frozen=True)
class GridFieldMap:
    """The file's column for each grid attribute.

    ``code`` and ``name`` must name columns of the file. The others are optional: ``None`` means
    "the column of the same name (``parent``, ``level``, ...) when the file has one"; a name given
    explicitly must exist.
    """

    code: str = "code"
    name: str = "name"
    parent: str | None = None
    level: str | None = None
    households: str | None = None
    population: str | None = None
    name_en: str | None = None


OPTIONAL_ATTRIBUTES = ("parent", "level", "households", "population", "name_en")


@dataclass(frozen=True)
class GridImport:
    count: int  # grids added
    warnings: list[Problem]  # gaps between siblings, when not strict


@dataclass
class GridFeature:
    number: int  # 1-based position in the file
    code: str
    name: str
    name_en: str | None
    parent_code: str | None
    level: str | None  # as given in the file, normalised; None: inferred from the parent
    households: int | None
    population: int | None
    geom: MultiPolygon

    @property
    def label(self) -> str:
        return f"feature {self.number} (code {self.code})"


def import_grids(
    conn: psycopg.Connection,
    *,
    path: Path,
    layer: str | None = None,
    fields: GridFieldMap | None = None,
    source_crs: str | None = None,
    encoding: str | None = None,
    strict: bool = False,
) -> GridImport:
    """Add the grids in ``path`` to the database. A gap between siblings is a warning, returned
    with the count, or with ``strict`` an error like any other."""
    path = Path(path)
    fields = fields or GridFieldMap()
    geofile = read_geofile(path, layer=layer, source_crs=source_crs, encoding=encoding)
    columns = _resolve_columns(path, fields, geofile.columns)

    problems = Problems(path.name)
    features, codes_in_file = _parse_features(geofile, columns, problems)
    try:
        with conn.transaction():
            depths = _check_tree(conn, features, codes_in_file, problems)
            problems.raise_if_any()
            _stage(conn, features, depths)
            by_code = {feature.code: feature for feature in features}
            warnings = check_topology(
                conn,
                label=lambda code: (
                    by_code[code].label if code in by_code else f"grid {code} (in the database)"
                ),
                problems=problems,
                strict=strict,
            )
            problems.raise_if_any()
            return GridImport(count=_insert(conn, depths), warnings=warnings)
    except psycopg.errors.IntegrityError as error:
        # The checks above mirror the table's constraints; this is the database's last word.
        raise ImportFailed(
            f"{path.name}: the database refused the grids: {error.diag.message_primary}",
            field=error.diag.column_name,
        ) from error


# -- columns ----------------------------------------------------------------------------


def _resolve_columns(path: Path, fields: GridFieldMap, file_columns: list[str]) -> dict[str, int | None]:
    """Map each attribute to the index of its column in the file, or None when it has none."""
    columns: dict[str, int | None] = {}
    for attribute in ("code", "name", *OPTIONAL_ATTRIBUTES):
        column = getattr(fields, attribute)
        if column is None:
            columns[attribute] = file_columns.index(attribute) if attribute in file_columns else None
        elif column in file_columns:
            columns[attribute] = file_columns.index(column)
        else:
            raise ImportFailed(
                f"{path.name} has no column {column!r} (for the grid {attribute}); "
                f"its columns are: {', '.join(file_columns) or 'none'}",
                field=attribute,
            )
    return columns


# -- one feature at a time ---------------------------------------------------------------------


def _parse_features(
    geofile: GeoFile, columns: dict[str, int | None], problems: Problems
) -> tuple[list[GridFeature], set[str]]:
    """The usable features, and the codes of all features (a broken one can still be a parent)."""
    features = []
    first_by_code: dict[str, int] = {}
    for index, wkb in enumerate(geofile.geometries):
        number = index + 1
        row = {
            attribute: None if column is None else geofile.values[column][index]
            for attribute, column in columns.items()
        }
        text = _text(row["code"])
        label = f"feature {number} (code {text})" if text else f"feature {number} (no code)"
        try:
            code = _code(text, "code")
            if code in first_by_code:
                raise BadValue("code", f"the code is also used by feature {first_by_code[code]}")
            first_by_code[code] = number
            features.append(
                GridFeature(
                    number=number,
                    code=code,
                    name=_required_text(row["name"], "name"),
                    name_en=_text(row["name_en"]),
                    parent_code=_optional_code(row["parent"], "parent"),
                    level=_level(row["level"]),
                    households=_count(row["households"], "households"),
                    population=_count(row["population"], "population"),
                    geom=_geometry(wkb, geofile),
                )
            )
        except BadValue as problem:
            problems.add(label, problem.field, problem.reason)
    return features, set(first_by_code)


def _text(raw: Any) -> str | None:
    """A cell as stripped text; None when empty. Whole numbers read as numbers lose their '.0'."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    if isinstance(raw, float | np.floating) and float(raw).is_integer():
        raw = int(raw)
    text = str(raw).strip()
    return text or None


def _required_text(raw: Any, field: str) -> str:
    text = _text(raw)
    if text is None:
        raise BadValue(field, f"the {field} is missing")
    return text


def _code(text: str | None, field: str) -> str:
    if text is None:
        raise BadValue(field, f"the {field} is missing")
    if len(text) > MAX_CODE_LENGTH or not set(text) <= CODE_CHARACTERS:
        raise BadValue(field, f"the {field} {text!r} is not a code (1-{MAX_CODE_LENGTH} of A-Z a-z 0-9 _ -)")
    return text


def _optional_code(raw: Any, field: str) -> str | None:
    text = _text(raw)
    return None if text is None else _code(text, field)


def _level(raw: Any) -> str | None:
    text = _text(raw)
    if text is None:
        return None
    level = LEVEL_NAMES.get(text.lower())
    if level is None:
        raise BadValue(
            "level",
            f"unknown level {text!r}; use one of {', '.join(LEVEL_DEPTHS)} (or 县, 乡镇, 村, 网格, 微网格)",
        )
    return level


def _count(raw: Any, field: str) -> int | None:
    text = _text(raw)
    if text is None:
        return None
    try:
        number = int(text)
    except ValueError:
        raise BadValue(field, f"{field} must be a whole number, not {text!r}") from None
    if not 0 <= number <= MAX_COUNT:
        raise BadValue(field, f"{field} must be between 0 and {MAX_COUNT}, not {number}")
    return number


def _geometry(wkb: bytes | None, geofile: GeoFile) -> MultiPolygon:
    """The feature's polygons in lon/lat: reprojected, checked, and refused rather than repaired."""
    if wkb is None:
        said = f" (the reader said: {geofile.reader_warnings[0]})" if geofile.reader_warnings else ""
        raise BadValue("geometry", f"no geometry, or one that cannot be read{said}")
    try:
        geom = shapely.force_2d(shapely.from_wkb(wkb))
    except shapely.errors.GEOSException as error:
        raise BadValue("geometry", f"broken geometry: {error}") from None
    if geom.is_empty:
        raise BadValue("geometry", "empty geometry")
    if isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    elif not isinstance(geom, MultiPolygon):
        raise BadValue("geometry", f"a {geom.geom_type} is not an area: grids are polygons")
    if geofile.to_wgs84 is not None:
        geom = shapely.transform(geom, geofile.to_wgs84)
    xmin, ymin, xmax, ymax = geom.bounds
    if not (-180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
        raise BadValue(
            "geometry",
            f"coordinates around ({xmin:.6g}, {ymin:.6g}) are not longitude/latitude after "
            "reprojection: is the file's coordinate reference system right? (--source-crs)",
        )
    if not geom.is_valid:
        raise BadValue("geometry", f"invalid geometry: {explain_validity(geom)}")
    return geom


# -- the tree ---------------------------------------------------------------------------------


def _check_tree(
    conn: psycopg.Connection, features: list[GridFeature], codes_in_file: set[str], problems: Problems
) -> dict[str, int]:
    """Check codes and parents against the database and each other; return each code's depth."""
    by_code = {feature.code: feature for feature in features}
    with conn.cursor(row_factory=tuple_row) as cursor:
        existing = {
            code for (code,) in cursor.execute("SELECT code FROM grids WHERE code = ANY(%s)", [list(by_code)])
        }
        outside_parents = sorted(
            {f.parent_code for f in features if f.parent_code and f.parent_code not in codes_in_file}
        )
        database_depths = dict(
            cursor.execute(
                "SELECT g.code, l.depth FROM grids g JOIN grid_levels l USING (level) WHERE g.code = ANY(%s)",
                [outside_parents],
            )
        )

    depths: dict[str, int | None] = {}

    def depth_of(feature: GridFeature, chain: tuple[str, ...] = ()) -> int | None:
        """The feature's depth; None when it has a problem (reported once, on that feature)."""
        if feature.code in depths:
            return depths[feature.code]
        if feature.code in chain or len(chain) >= len(LEVEL_DEPTHS):
            chain_text = " → ".join((*chain, feature.code))
            problems.add(
                feature.label, "parent", f"its chain of parents loops or passes five levels: {chain_text}"
            )
            depths[feature.code] = None
            return None
        depths[feature.code] = depth = _depth(feature, chain)
        return depth

    def _depth(feature: GridFeature, chain: tuple[str, ...]) -> int | None:
        parent = feature.parent_code
        if parent is None:
            parent_depth = 0
        elif parent == feature.code:
            problems.add(feature.label, "parent", "it is its own parent")
            return None
        elif parent in by_code:
            parent_depth = depth_of(by_code[parent], (*chain, feature.code))
            if parent_depth is None:
                return None
        elif parent in codes_in_file:
            return None  # the parent is in the file but unusable: its own problem is reported
        elif parent in database_depths:
            parent_depth = database_depths[parent]
        else:
            problems.add(
                feature.label, "parent", f"the parent {parent} is neither in the file nor in the database"
            )
            return None

        depth = LEVEL_DEPTHS[feature.level] if feature.level else parent_depth + 1
        if parent is None and depth != 1:
            problems.add(
                feature.label, "parent", f"a {LEVEL_BY_DEPTH[depth]} needs a parent; only a county has none"
            )
            return None
        if depth <= parent_depth:
            problems.add(
                feature.label,
                "level",
                f"a {LEVEL_BY_DEPTH[depth]} cannot sit under the {LEVEL_BY_DEPTH[parent_depth]} {parent}",
            )
            return None
        if depth > len(LEVEL_DEPTHS):
            problems.add(feature.label, "level", f"too deep: the parent {parent} is already a microgrid")
            return None
        return depth

    for feature in features:
        if feature.code in existing:
            problems.add(
                feature.label,
                "code",
                "the code already exists in the database (imports add grids, they never change them)",
            )
        depth_of(feature)
    return {code: depth for code, depth in depths.items() if depth is not None}


# -- writing ----------------------------------------------------------------------------------

STAGE = """
CREATE TEMPORARY TABLE grid_import (
    number integer NOT NULL,
    code text NOT NULL,
    parent_code text,
    depth smallint NOT NULL,
    name_zh text NOT NULL,
    name_en text,
    households integer,
    population integer,
    geom geometry(MultiPolygon, 4326) NOT NULL
)
"""

COPY_STAGE = """
COPY grid_import (number, code, parent_code, depth, name_zh, name_en, households, population, geom)
FROM STDIN
"""

INSERT_DEPTH = """
INSERT INTO grids (code, level, parent_id, name_zh, name_en, households, population, geom)
SELECT s.code, l.level, p.id, s.name_zh, s.name_en, s.households, s.population, s.geom
  FROM grid_import s
  JOIN grid_levels l ON l.depth = s.depth
  LEFT JOIN grids p ON p.code = s.parent_code
 WHERE s.depth = %s
 ORDER BY s.number
"""


def _stage(conn: psycopg.Connection, features: list[GridFeature], depths: dict[str, int]) -> None:
    with conn.cursor() as cursor:
        cursor.execute(STAGE)
        with cursor.copy(COPY_STAGE) as copy:
            for f in features:
                ewkb = shapely.to_wkb(shapely.set_srid(f.geom, 4326), hex=True, include_srid=True)
                copy.write_row(
                    (f.number, f.code, f.parent_code, depths[f.code], f.name, f.name_en,
                     f.households, f.population, ewkb)
                )  # fmt: skip
        # Temporary tables are never analysed by autovacuum: the topology checks need the numbers.
        cursor.execute("ANALYZE grid_import")


def _insert(conn: psycopg.Connection, depths: dict[str, int]) -> int:
    with conn.cursor() as cursor:
        # Parents before children: one statement per level, top down.
        inserted = 0
        for depth in sorted(set(depths.values())):
            inserted += cursor.execute(INSERT_DEPTH, [depth]).rowcount
        cursor.execute("DROP TABLE grid_import")
    return inserted
