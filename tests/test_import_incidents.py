"""`gridwatch import incidents`: real CSV and GeoJSON files into the real PostGIS.

The small test county 511423 covers 103.30-103.40 E, 29.85-29.95 N; its grid 511423001001001 is
103.30-103.325 E, 29.85-29.90 N and its grid 511423002002002 is 103.375-103.40 E, 29.90-29.95 N.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli import main
from server.coords import wgs84_to_gcj02
from server.errors import ImportFailed
from server.importers.incidents import import_incidents

HEADER = "lon,lat,category,description,reported_at,channel\n"
GOOD_ROWS = [
    "103.31,29.86,sanitation,垃圾堆放,2026-06-01 08:30,app",
    "103.39,29.94,straw_burning,田间焚烧秸秆,2026-09-20T17:05:00+08:00,",
    '103.31,29.86,public_facility,"路灯不亮, 三盏",,hotline_12345',
]


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_geojson(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    return path


def point(lon: float, lat: float, **properties) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


def counts(conn) -> tuple[int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM incidents) AS incidents,"
        " (SELECT count(*) FROM incident_events) AS events"
    ).fetchone()
    return row["incidents"], row["events"]


def imported(conn) -> list[dict]:
    """The incidents the import wrote, in id order, with their grid and their one event."""
    return conn.execute(
        """SELECT i.id, g.code AS grid, i.grid_id = grid_at(i.geom) AS finest, i.category_code,
                  i.description, i.channel, i.status, i.priority, i.reported_at, ST_X(i.geom) AS lon,
                  e.action, e.from_status, e.to_status, e.at = i.reported_at AS event_at_report, e.data
             FROM incidents i
             JOIN grids g ON g.id = i.grid_id
             JOIN incident_events e ON e.incident_id = i.id
            WHERE e.data ? 'file'
            ORDER BY i.id"""
    ).fetchall()


def fails(conn, path: Path) -> ImportFailed:
    """Import a bad file; check that it fails and that it changed nothing."""
    before = counts(conn)
    with pytest.raises(ImportFailed) as caught:
        import_incidents(conn, path=path)
    assert counts(conn) == before
    return caught.value


def test_a_csv_is_imported_into_the_finest_grid_with_a_report_event(conn, tmp_path):
    before = counts(conn)

    assert import_incidents(conn, path=write_csv(tmp_path / "cases.csv", GOOD_ROWS)) == 3

    assert counts(conn) == (before[0] + 3, before[1] + 3)
    rows = imported(conn)
    assert [(r["grid"], r["category_code"], r["channel"]) for r in rows] == [
        ("511423001001001", "sanitation", "app"),
        ("511423002002002", "straw_burning", "import"),
        ("511423001001001", "public_facility", "hotline_12345"),
    ]
    assert all(r["finest"] and r["status"] == "reported" and r["event_at_report"] for r in rows)
    assert {(r["action"], r["from_status"], r["to_status"]) for r in rows} == {("report", None, "reported")}
    assert [r["data"] for r in rows] == [{"file": "cases.csv", "row": n} for n in (2, 3, 4)]
    # Without an offset the time is China Standard Time; the priority defaults to the category's.
    assert rows[0]["reported_at"].isoformat() == "2026-06-01T00:30:00+00:00"
    assert rows[1]["reported_at"].isoformat() == "2026-09-20T09:05:00+00:00"
    assert (rows[0]["priority"], rows[1]["priority"]) == ("normal", "urgent")
    assert rows[2]["description"] == "路灯不亮, 三盏"


def test_geojson_points_are_imported(conn, tmp_path):
    features = [
        point(103.31, 29.86, category="dispute", description="邻里纠纷", priority="high", accuracy_m=8),
        point(103.39, 29.94, category="epidemic", reported_at="2026-03-01T10:00:00Z"),
    ]

    assert import_incidents(conn, path=write_geojson(tmp_path / "cases.geojson", features)) == 2

    rows = imported(conn)
    assert [(r["grid"], r["priority"], r["lon"]) for r in rows] == [
        ("511423001001001", "high", 103.31),
        ("511423002002002", "high", 103.39),
    ]
    assert [r["data"] for r in rows] == [{"file": "cases.geojson", "feature": n} for n in (1, 2)]


def test_points_on_shared_edges_go_where_grid_at_puts_them(conn, tmp_path):
    # The import finds all grids in one spatial join; it must keep grid_at's rule: the deepest grid
    # covering the point, boundary included, and among grids of that depth the smallest code.
    # A micro-grid fills the south-western quarter of grid 511423001001001.
    conn.execute(
        """INSERT INTO grids (code, level, parent_id, name_zh, geom)
           SELECT '511423001001001001', 'microgrid', id, '微网格',
                  ST_Multi(ST_MakeEnvelope(103.30, 29.85, 103.3125, 29.875, 4326))
             FROM grids WHERE code = '511423001001001'"""
    )
    expected = {
        (103.325, 29.87): "511423001001001",  # the edge between grids 001 and 002 of a village
        (103.325, 29.90): "511423001001001",  # a corner of four grids in two villages
        (103.35, 29.90): "511423001001002",  # a corner of four grids in two townships
        (103.35, 29.93): "511423001002002",  # the edge between two townships
        (103.30, 29.95): "511423001002001",  # the county's corner
        (103.3125, 29.86): "511423001001001001",  # the micro-grid's edge inside its grid
        (103.30, 29.85): "511423001001001001",  # the county's corner, in the micro-grid
        (103.31, 29.875): "511423001001001001",  # the micro-grid's edge
    }
    rows = [f"{lon},{lat},sanitation" for lon, lat in expected]

    assert (
        import_incidents(conn, path=write_csv(tmp_path / "edges.csv", rows, header="lon,lat,category\n")) == 8
    )

    found = conn.execute(
        """SELECT ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, g.code, i.grid_id = grid_at(i.geom) AS same
             FROM incidents i JOIN grids g ON g.id = i.grid_id
            WHERE i.channel = 'import' ORDER BY i.id"""
    ).fetchall()
    assert {(r["lon"], r["lat"]): r["code"] for r in found} == expected
    assert all(r["same"] for r in found)


def test_a_spreadsheet_csv_with_a_byte_order_mark_and_only_the_required_columns(conn, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefflon,lat,category\r\n103.31,29.91,sanitation\r\n".encode())

    assert import_incidents(conn, path=path) == 1
    assert imported(conn)[0]["grid"] == "511423001002001"


def test_the_cli_imports_a_file_and_reports_a_bad_one(database_url, conn, tmp_path):
    runner = CliRunner(env={"GRIDWATCH_DATABASE_URL": database_url})
    good = write_csv(tmp_path / "good.csv", GOOD_ROWS)

    result = runner.invoke(main, ["import", "incidents", str(good)])

    assert result.exit_code == 0, result.output
    assert "imported 3 incidents from good.csv" in result.output
    before = counts(conn)

    bad = write_csv(tmp_path / "bad.csv", [*GOOD_ROWS, "104.5,29.5,sanitation,,,"])
    result = runner.invoke(main, ["import", "incidents", str(bad)])

    assert result.exit_code == 1
    assert "row 5: the point (104.5, 29.5) is outside every grid" in result.stderr
    assert counts(conn) == before


# -- bad files: each fails naming the row (or the column) and changes nothing ---------------------


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ("103.31,29.86,garbage,,,", "category", "no category has the code 'garbage'"),
        ("104.5,29.5,sanitation,,,", "geometry", "the point (104.5, 29.5) is outside every grid"),
        ("east,29.86,sanitation,,,", "lon", "lon must be a number, not 'east'"),
        ("103.31,129.86,sanitation,,,", "lat", "lat must be between -90 and 90, not 129.86"),
        (",29.86,sanitation,,,", "lon", "lon is missing"),
        ("103.31,29.86,,,,", "category", "the category is missing"),
        ("103.31,29.86,sanitation,,yesterday,", "reported_at", "reported_at 'yesterday' is not a date"),
        ("103.31,29.86,sanitation,,2999-01-01,", "reported_at", "reported_at 2999-01-01 is in the future"),
        ("103.31,29.86,sanitation,,,fax", "channel", "unknown channel 'fax'"),
        ("103.31,29.86,sanitation,,,app,surplus", "row", "more values than columns"),
    ],
)  # fmt: skip
def test_a_bad_row_fails_naming_the_row(conn, tmp_path, row, field, reason):
    error = fails(conn, write_csv(tmp_path / "bad.csv", [*GOOD_ROWS, row]))

    assert f"bad.csv has 1 problem:\n  row 5: {reason}" in error.message
    assert error.field == field


def test_every_bad_row_is_named_in_one_message(conn, tmp_path):
    rows = ["east,29.86,sanitation,,,", *GOOD_ROWS, "103.31,29.86,garbage,,,"]

    error = fails(conn, write_csv(tmp_path / "bad.csv", rows))

    assert "row 2: lon must be a number" in error.message
    # Rows with unusable values stop the import before the database is asked about the others.
    assert "garbage" not in error.message
    error = fails(conn, write_csv(tmp_path / "bad.csv", [*rows[1:], "104.5,29.5,sanitation,,,"]))
    assert "2 problems" in error.message
    assert "row 5: no category has the code 'garbage'" in error.message
    assert "row 6: the point (104.5, 29.5) is outside every grid" in error.message


def test_a_wrong_column_fails_naming_the_column(conn, tmp_path):
    error = fails(
        conn, write_csv(tmp_path / "bad.csv", GOOD_ROWS, header=HEADER.replace("channel", "chanel"))
    )

    assert "unknown column 'chanel'" in error.message
    assert error.field == "chanel"


def test_a_missing_required_column_fails(conn, tmp_path):
    error = fails(conn, write_csv(tmp_path / "bad.csv", ["103.31,29.86"], header="lon,lat\n"))

    assert "the column 'category' is missing" in error.message


def test_a_geojson_feature_that_is_not_a_point_fails_naming_the_feature(conn, tmp_path):
    track = {"type": "LineString", "coordinates": [[103.31, 29.86], [103.32, 29.87]]}
    line = {"type": "Feature", "geometry": track, "properties": {"category": "sanitation"}}
    features = [point(103.31, 29.86, category="sanitation"), line, {**line, "geometry": None}]

    error = fails(conn, write_geojson(tmp_path / "bad.geojson", features))

    assert "feature 2: a LineString is not a Point" in error.message
    assert "feature 3: no geometry" in error.message


def test_a_geojson_with_another_crs_fails(conn, tmp_path):
    path = tmp_path / "bad.geojson"
    document = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:4543"}},
                "features": [point(630392.99, 3309794.08, category="sanitation")]}  # fmt: skip
    path.write_text(json.dumps(document))

    assert fails(conn, path).field == "crs"


def test_a_file_that_is_not_utf8_fails(conn, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes((HEADER + "103.31,29.86,sanitation,垃圾堆放,,\n").encode("gbk"))

    error = fails(conn, path)

    assert "is not UTF-8 text" in error.message


def test_an_unsupported_file_type_fails(conn, tmp_path):
    path = tmp_path / "cases.xlsx"
    path.write_bytes(b"PK")

    assert fails(conn, path).field == "path"


def test_gcj02_points_are_converted_before_the_grid_is_found(database_url, conn, tmp_path):
    # 103.324 E lies in grid 511423001001001 (east edge 103.325); its GCJ-02 image, 103.3261 E,
    # would land in the next grid east if it were stored unconverted.
    gcj_lon, gcj_lat = (float(v) for v in wgs84_to_gcj02(103.324, 29.86))
    path = write_csv(tmp_path / "gaode.csv", [f"{gcj_lon},{gcj_lat},sanitation"], header="lon,lat,category\n")

    result = CliRunner(env={"GRIDWATCH_DATABASE_URL": database_url}).invoke(
        main, ["import", "incidents", str(path), "--crs", "gcj02"]
    )

    assert result.exit_code == 0, result.output
    [row] = imported(conn)
    assert row["grid"] == "511423001001001"
    assert abs(row["lon"] - 103.324) < 1e-7
    assert row["data"] == {"file": "gaode.csv", "row": 2, "crs": "gcj02"}
