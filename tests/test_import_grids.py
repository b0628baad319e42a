"""`gridwatch import grids`: real GeoJSON, GeoPackage and Shapefile files into the real PostGIS.

The test database holds the small county 511423 (tests/fixtures/small_county.sql). A new county
511499 is drawn east of it at 103.50-103.60 E, 29.85-29.95 N.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Geod, Transformer
from shapely.geometry import Polygon, box

from server.cli import main
from server.coords import wgs84_to_gcj02
from server.errors import ImportFailed
from server.importers.grids import GridFieldMap, import_grids

COUNTY = box(103.50, 29.85, 103.60, 29.95)
TOWNSHIP = box(103.50, 29.85, 103.55, 29.95)
VILLAGE = box(103.50, 29.85, 103.55, 29.90)
GRID_1 = box(103.50, 29.85, 103.525, 29.90)
GRID_2 = box(103.525, 29.85, 103.55, 29.90)
BOWTIE = Polygon([(103.50, 29.85), (103.55, 29.90), (103.55, 29.85), (103.50, 29.90)])

# A whole branch, with the level given in English, in Chinese, and left to be inferred.
TREE = [
    {"code": "511499", "name": "新县", "name_en": "New County", "level": "county", "geometry": COUNTY},
    {"code": "511499001", "name": "新镇", "parent": "511499", "level": "乡镇", "geometry": TOWNSHIP},
    {"code": "511499001001", "name": "新村", "parent": "511499001", "geometry": VILLAGE},
    {"code": "511499001001001", "name": "第一网格", "parent": "511499001001", "level": "网格",
     "households": 60, "population": 180, "geometry": GRID_1},
    {"code": "511499001001002", "name": "第二网格", "parent": "511499001001", "households": 45,
     "population": 130, "geometry": GRID_2},
]  # fmt: skip


def geojson_feature(properties: dict, geometry) -> dict:
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": geometry if isinstance(geometry, dict | None) else shapely.geometry.mapping(geometry),
    }


def write_geojson(path: Path, features: list[dict], crs: str | None = None) -> Path:
    """Write features given as dicts of properties plus a "geometry" (shapely, raw dict or None)."""
    document = {
        "type": "FeatureCollection",
        "features": [
            geojson_feature({k: v for k, v in f.items() if k != "geometry"}, f["geometry"]) for f in features
        ],
    }
    if crs:
        document["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def project(geometry, transformer: Transformer):
    return shapely.transform(geometry, lambda xy: np.column_stack(transformer.transform(*xy.T)))


def write_with_ogr(
    path: Path, features: list[dict], *, crs: str | None, driver: str, layer: str | None = None, declare=True
) -> Path:
    """Write features with GDAL (GeoPackage, Shapefile): geometries reprojected from lon/lat to
    ``crs``, which the file declares unless ``declare`` is false."""
    names = ["code", "name", "parent", "level", "households", "population"]
    to_target = Transformer.from_crs(4326, crs, always_xy=True) if crs else None
    geometries = []
    for feature in features:
        geometry = feature["geometry"]
        if to_target:
            geometry = project(geometry, to_target)
        geometries.append(shapely.to_wkb(geometry))
    field_data = [np.array([f.get(name) for f in features], dtype=object) for name in names[:4]]
    field_data += [np.array([f.get(name, 0) for f in features], dtype=np.int32) for name in names[4:]]
    with warnings.catch_warnings():
        # pyogrio warns when it writes a file without a CRS: that file is what the test wants.
        warnings.simplefilter("ignore", UserWarning)
        pyogrio.raw.write(
            path,
            np.array(geometries, dtype=object),
            field_data,
            fields=names,
            geometry_type="Unknown",
            crs=crs if declare else None,
            driver=driver,
            layer=layer,
        )
    return path


def grid_count(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM grids").fetchone()["n"]


def grids_by_code(conn, prefix: str) -> dict[str, dict]:
    rows = conn.execute(
        """SELECT g.code, g.level, p.code AS parent, g.name_zh, g.name_en, g.households, g.population,
                  GeometryType(g.geom) AS type, ST_SRID(g.geom) AS srid, g.geom::text AS ewkb,
                  (SELECT array_agg(a.code ORDER BY nlevel(a.path)) FROM grids a
                    WHERE a.path @> g.path AND a.id <> g.id) AS ancestors
             FROM grids g LEFT JOIN grids p ON p.id = g.parent_id
            WHERE g.code LIKE %s ORDER BY g.code""",
        [prefix + "%"],
    ).fetchall()
    return {row["code"]: row for row in rows}


def assert_same_shape(ewkb_hex: str, expected, tolerance: float = 1e-7) -> None:
    stored = shapely.from_wkb(bytes.fromhex(ewkb_hex))
    assert stored.symmetric_difference(expected).area < tolerance * expected.length
    assert shapely.hausdorff_distance(stored, expected) < tolerance


def fails(conn, path: Path, **options) -> ImportFailed:
    """Import a bad file; check that it fails and that it changed nothing."""
    before = grid_count(conn)
    with pytest.raises(ImportFailed) as caught:
        import_grids(conn, path=path, **options)
    assert grid_count(conn) == before
    return caught.value


# -- good files ---------------------------------------------------------------------------------


def test_a_geojson_tree_is_imported_with_levels_parents_and_paths(conn, tmp_path):
    path = write_geojson(tmp_path / "new.geojson", TREE)
    before = grid_count(conn)

    result = import_grids(conn, path=path)

    assert result.count == 5

    assert grid_count(conn) == before + 5
    grids = grids_by_code(conn, "511499")
    assert {code: row["level"] for code, row in grids.items()} == {
        "511499": "county",
        "511499001": "township",
        "511499001001": "village",
        "511499001001001": "grid",
        "511499001001002": "grid",
    }
    grid = grids["511499001001002"]
    assert grid["parent"] == "511499001001"
    assert grid["ancestors"] == ["511499", "511499001", "511499001001"]
    assert (grid["name_zh"], grid["households"], grid["population"]) == ("第二网格", 45, 130)
    assert grids["511499"]["name_en"] == "New County"
    assert {(row["type"], row["srid"]) for row in grids.values()} == {("MULTIPOLYGON", 4326)}
    assert_same_shape(grid["ewkb"], GRID_2)
    # The county has one township on its western half, and it one village on its southern half.
    assert [(w.where, w.field) for w in result.warnings] == [
        ("feature 1 (code 511499)", "geometry"),
        ("feature 2 (code 511499001)", "geometry"),
    ]


def test_a_branch_hangs_under_a_grid_already_in_the_database(conn, tmp_path):
    parent = "511423001001001"  # a grid of the fixture county: 103.30-103.325 E, 29.85-29.90 N
    halves = [box(103.30, 29.85, 103.3125, 29.90), box(103.3125, 29.85, 103.325, 29.90)]
    features = [
        {"code": f"{parent}{n:03d}", "name": f"微网格{n}", "parent": parent, "geometry": half}
        for n, half in enumerate(halves, start=1)
    ]

    result = import_grids(conn, path=write_geojson(tmp_path / "micro.geojson", features))

    assert (result.count, result.warnings) == (2, [])

    micro = grids_by_code(conn, parent + "0")
    assert {row["level"] for row in micro.values()} == {"microgrid"}
    assert micro[f"{parent}001"]["ancestors"] == ["511423", "511423001", "511423001001", parent]


def test_a_geopackage_in_cgcs2000_gauss_kruger_is_reprojected(conn, tmp_path):
    # EPSG:4543: CGCS2000 / 3-degree Gauss-Kruger CM 102E, the zone that covers Hongya (103.3 E).
    path = write_with_ogr(tmp_path / "tree.gpkg", TREE, crs="EPSG:4543", driver="GPKG", layer="grids")

    assert import_grids(conn, path=path).count == 5

    grids = grids_by_code(conn, "511499")
    assert_same_shape(grids["511499"]["ewkb"], COUNTY)
    assert_same_shape(grids["511499001001001"]["ewkb"], GRID_1)
    assert grids["511499001001001"]["households"] == 60


def test_a_shapefile_in_utm_with_mapped_columns_is_reprojected(conn, tmp_path):
    renamed = [
        {"code": f["code"], "name": f["name"], "parent": f.get("parent"), "level": f.get("level"),
         "households": f.get("households", 0), "geometry": f["geometry"]}
        for f in TREE
    ]  # fmt: skip
    path = write_with_ogr(tmp_path / "tree.shp", renamed, crs="EPSG:32648", driver="ESRI Shapefile")
    fields = GridFieldMap(code="code", name="name", parent="parent", level="level", households="households")

    assert import_grids(conn, path=path, fields=fields).count == 5

    grids = grids_by_code(conn, "511499")
    assert_same_shape(grids["511499001001002"]["ewkb"], GRID_2)
    assert grids["511499001001002"]["households"] == 45


def test_a_file_without_crs_is_imported_with_source_crs(conn, tmp_path):
    path = write_with_ogr(
        tmp_path / "nocrs.shp", TREE, crs="EPSG:4543", driver="ESRI Shapefile", declare=False
    )
    assert not path.with_suffix(".prj").exists()

    assert import_grids(conn, path=path, source_crs="EPSG:4543").count == 5

    assert_same_shape(grids_by_code(conn, "511499")["511499001"]["ewkb"], TOWNSHIP)


def test_the_cli_imports_a_file(database_url, conn, tmp_path):
    path = write_geojson(tmp_path / "new.geojson", TREE)

    result = CliRunner(env={"GRIDWATCH_DATABASE_URL": database_url}).invoke(
        main, ["import", "grids", str(path), "--name-en-field", "name_en"]
    )

    assert result.exit_code == 0, result.output
    assert "imported 5 grids from new.geojson" in result.output
    assert len(grids_by_code(conn, "511499")) == 5


def test_the_cli_reports_the_feature_and_changes_nothing(database_url, conn, tmp_path):
    bad = [*TREE[:3], {**TREE[3], "parent": "999"}]
    path = write_geojson(tmp_path / "bad.geojson", bad)
    before = grid_count(conn)

    result = CliRunner(env={"GRIDWATCH_DATABASE_URL": database_url}).invoke(
        main, ["import", "grids", str(path)]
    )

    assert result.exit_code == 1
    assert "import failed, nothing was changed" in result.stderr
    assert "feature 4 (code 511499001001001): the parent 999 is neither in the file" in result.stderr
    assert grid_count(conn) == before


# -- bad files: each fails naming the feature (or the file's column / CRS) and changes nothing ----


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        (BOWTIE, "invalid geometry: Self-intersection"),
        ({"type": "Polygon", "coordinates": [[[103.5, 29.85], [103.55, 29.9], [103.5, 29.85]]]},
         "invalid geometry: Too few points"),
        ({"type": "Polygon", "coordinates": "not coordinates"}, "no geometry, or one that cannot be read"),
        (None, "no geometry"),
        ({"type": "LineString", "coordinates": [[103.5, 29.85], [103.55, 29.9]]}, "a LineString is not"),
    ],
)  # fmt: skip
def test_a_broken_geometry_fails_naming_the_feature(conn, tmp_path, geometry, reason):
    path = write_geojson(tmp_path / "bad.geojson", [*TREE[:4], {**TREE[4], "geometry": geometry}])

    error = fails(conn, path)

    assert "feature 5 (code 511499001001002): " + reason in error.message
    assert error.field == "geometry"


def test_a_missing_attribute_fails_naming_the_feature(conn, tmp_path):
    features = [*TREE[:3], {**TREE[3], "name": ""}, {**TREE[4], "code": None}]

    error = fails(conn, write_geojson(tmp_path / "bad.geojson", features))

    assert "2 problems" in error.message
    assert "feature 4 (code 511499001001001): the name is missing" in error.message
    assert "feature 5 (no code): the code is missing" in error.message
    assert error.field == "name"
    assert [problem["where"] for problem in error.extra["problems"]] == [
        "feature 4 (code 511499001001001)",
        "feature 5 (no code)",
    ]


def test_an_unknown_crs_fails(conn, tmp_path):
    error = fails(conn, write_geojson(tmp_path / "bad.geojson", TREE, crs="EPSG:999999"))

    assert "unknown coordinate reference system 'EPSG:999999'" in error.message
    assert error.field == "crs"


def test_a_crs_that_cannot_reach_wgs84_fails(conn, tmp_path):
    path = write_with_ogr(tmp_path / "local.shp", TREE, crs=None, driver="ESRI Shapefile")
    path.with_suffix(".prj").write_text('LOCAL_CS["site grid",UNIT["metre",1]]')

    assert fails(conn, path).field == "crs"


def test_a_file_without_crs_fails_and_asks_for_source_crs(conn, tmp_path):
    error = fails(conn, write_with_ogr(tmp_path / "nocrs.shp", TREE, crs=None, driver="ESRI Shapefile"))

    assert "does not say which coordinate reference system" in error.message
    assert "--source-crs" in error.message


def test_projected_coordinates_in_a_file_that_claims_wgs84_fail_naming_the_feature(conn, tmp_path):
    to_gk = Transformer.from_crs(4326, 4543, always_xy=True)
    projected = [{**f, "geometry": project(f["geometry"], to_gk)} for f in TREE]

    error = fails(conn, write_geojson(tmp_path / "bad.geojson", projected))

    assert "feature 1 (code 511499): coordinates around (6" in error.message
    assert "are not longitude/latitude" in error.message


def test_a_wrong_column_fails_naming_the_column(conn, tmp_path):
    path = write_geojson(tmp_path / "tree.geojson", TREE)

    error = fails(conn, path, fields=GridFieldMap(households="hh"))

    assert "has no column 'hh' (for the grid households)" in error.message
    assert "its columns are: code, name, name_en, parent, level, households" in error.message
    assert error.field == "households"


def test_a_column_of_the_wrong_kind_fails_naming_the_feature(conn, tmp_path):
    features = [*TREE[:4], {**TREE[4], "households": "many"}]

    error = fails(conn, write_geojson(tmp_path / "bad.geojson", features))

    assert "feature 5 (code 511499001001002): households must be a whole number, not 'many'" in error.message


def test_an_unknown_parent_fails_naming_the_feature(conn, tmp_path):
    features = [*TREE[:4], {**TREE[4], "parent": "511499009009"}]

    error = fails(conn, write_geojson(tmp_path / "bad.geojson", features))

    assert (
        "feature 5 (code 511499001001002): the parent 511499009009 is neither in the file nor in the database"
        in error.message
    )
    assert error.field == "parent"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"code": "511499001"}, "code", "the code is also used by feature 2"),
        ({"code": "511423001001001"}, "code", "the code already exists in the database"),
        ({"level": "village"}, "level", "a village cannot sit under the village 511499001001"),
        ({"level": "hamlet"}, "level", "unknown level 'hamlet'"),
        ({"parent": None, "level": "grid"}, "parent", "a grid needs a parent; only a county has none"),
        ({"code": "5114 99"}, "code", "the code '5114 99' is not a code"),
        ({"population": -3}, "population", "population must be between 0 and"),
    ],
)
def test_a_tree_error_fails_naming_the_feature(conn, tmp_path, change, field, reason):
    bad = {**TREE[4], **change}
    error = fails(conn, write_geojson(tmp_path / "bad.geojson", [*TREE[:4], bad]))

    assert f"feature 5 (code {bad['code']}): {reason}" in error.message
    assert error.field == field


def test_a_loop_of_parents_fails(conn, tmp_path):
    features = [
        {"code": "a1", "name": "甲", "parent": "a2", "geometry": GRID_1},
        {"code": "a2", "name": "乙", "parent": "a1", "geometry": GRID_2},
    ]

    error = fails(conn, write_geojson(tmp_path / "loop.geojson", features))

    assert (
        "feature 1 (code a1): its chain of parents loops or passes five levels: a1 → a2 → a1" in error.message
    )


def test_a_geopackage_with_several_layers_needs_one_named(conn, tmp_path):
    path = tmp_path / "two.gpkg"
    write_with_ogr(path, TREE, crs="EPSG:4326", driver="GPKG", layer="grids")
    write_with_ogr(path, TREE[:1], crs="EPSG:4326", driver="GPKG", layer="boundary")

    error = fails(conn, path)
    assert "has 2 layers (grids, boundary): choose one with --layer" in error.message
    assert fails(conn, path, layer="villages").field == "layer"
    assert import_grids(conn, path=path, layer="grids").count == 5


def test_a_file_that_is_not_geodata_fails(conn, tmp_path):
    path = tmp_path / "notes.geojson"
    path.write_text("{not json")

    assert fails(conn, path).field == "path"


def test_a_failed_import_leaves_the_callers_transaction_usable(conn, tmp_path):
    bad = write_geojson(tmp_path / "bad.geojson", [*TREE[:4], {**TREE[4], "geometry": BOWTIE}])
    good = write_geojson(tmp_path / "good.geojson", TREE)
    before = grid_count(conn)
    fails(conn, bad)

    assert import_grids(conn, path=good).count == 5
    assert grid_count(conn) == before + 5


def test_the_cli_maps_chinese_column_names_in_a_chinese_layer(database_url, conn, tmp_path):
    columns = {
        "网格编码": "code",
        "网格名称": "name",
        "上级编码": "parent",
        "层级": "level",
        "户数": "households",
    }
    path = tmp_path / "中保镇.gpkg"
    pyogrio.raw.write(
        path,
        np.array([shapely.to_wkb(f["geometry"]) for f in TREE], dtype=object),
        [np.array([f.get(key) for f in TREE], dtype=object) for key in columns.values()],
        fields=list(columns),
        geometry_type="Polygon",
        crs="EPSG:4490",  # CGCS2000 longitude/latitude
        driver="GPKG",
        layer="网格",
    )
    options = [f"--{key}-field={column}" for column, key in columns.items()]

    result = CliRunner(env={"GRIDWATCH_DATABASE_URL": database_url}).invoke(
        main, ["import", "grids", str(path), "--layer", "网格", *options]
    )

    assert result.exit_code == 0, result.output
    grids = grids_by_code(conn, "511499")
    assert grids["511499001"]["level"] == "township"
    assert grids["511499001001002"]["households"] == 45
    assert_same_shape(grids["511499001001002"]["ewkb"], GRID_2)


def test_a_gbk_shapefile_without_cpg_is_read_with_encoding(conn, tmp_path):
    # Chinese ArcGIS exports often write GBK text and lose the .cpg that says so.
    path = tmp_path / "gbk.shp"
    pyogrio.raw.write(
        path,
        np.array([shapely.to_wkb(f["geometry"]) for f in TREE], dtype=object),
        [np.array([f.get(key) for f in TREE], dtype=object) for key in ("code", "name", "parent")],
        fields=["code", "name", "parent"],
        geometry_type="Polygon",
        crs="EPSG:4326",
        driver="ESRI Shapefile",
        encoding="GBK",
    )
    path.with_suffix(".cpg").unlink()

    assert fails(conn, path, encoding="no-such-encoding").field == "encoding"
    assert import_grids(conn, path=path, encoding="GBK").count == 5
    assert grids_by_code(conn, "511499")["511499001001001"]["name_zh"] == "第一网格"


def test_children_of_a_broken_feature_are_not_blamed_for_it(conn, tmp_path):
    features = [*TREE[:2], {**TREE[2], "geometry": BOWTIE}, *TREE[3:]]

    error = fails(conn, write_geojson(tmp_path / "bad.geojson", features))

    assert "has 1 problem:\n  feature 3 (code 511499001001): invalid geometry" in error.message


def test_grids_drawn_on_a_gcj02_basemap_are_converted(conn, tmp_path):
    shifted = [{**f, "geometry": shapely.transform(f["geometry"], to_gcj02)} for f in TREE]

    assert (
        import_grids(conn, path=write_geojson(tmp_path / "gaode.geojson", shifted), source_crs="GCJ-02").count
        == 5
    )

    assert_same_shape(grids_by_code(conn, "511499")["511499001001002"]["ewkb"], GRID_2)


def to_gcj02(xy: np.ndarray) -> np.ndarray:
    return np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))


# -- the partition: children inside their parent, siblings without overlaps or gaps -----------------
# The county 511499 (COUNTY) with townships given by their shapes; WEST and EAST tile it exactly.

WEST = box(103.50, 29.85, 103.55, 29.95)
EAST = box(103.55, 29.85, 103.60, 29.95)
WGS84 = Geod(ellps="WGS84")


def county_with(*townships) -> list[dict]:
    return [
        TREE[0],
        *(
            {"code": f"511499{n:03d}", "name": f"第{n}镇", "parent": "511499", "geometry": township}
            for n, township in enumerate(townships, start=1)
        ),
    ]


def km2(geometry) -> str:
    """The area on the WGS84 spheroid, as the messages write it, of a shape whose edges follow
    meridians and parallels (densified, so the geodesics between vertices follow them too)."""
    return f"{abs(WGS84.geometry_area_perimeter(shapely.segmentize(geometry, 0.001))[0]) / 1e6:.2f} km²"


def test_a_seamless_partition_imports_without_warnings(conn, tmp_path):
    result = import_grids(conn, path=write_geojson(tmp_path / "seamless.geojson", county_with(WEST, EAST)))

    assert (result.count, result.warnings) == (3, [])


def test_a_child_outside_its_parent_fails_with_the_area_outside(conn, tmp_path):
    wide_east = box(103.55, 29.85, 103.61, 29.95)

    error = fails(conn, write_geojson(tmp_path / "outside.geojson", county_with(WEST, wide_east)))

    outside, around = km2(wide_east - COUNTY), "(103.60500, 29.90000)"
    assert error.extra["problems"] == [
        {
            "where": "feature 3 (code 511499002)",
            "field": "geometry",
            "reason": f"有 {outside} 在上级 feature 1 (code 511499) 之外，位于 {around} 附近 / "
            f"{outside} of it lies outside its parent feature 1 (code 511499), around {around}",
        }
    ]


def test_overlapping_siblings_fail_naming_both_and_the_overlap(conn, tmp_path):
    wide_west = box(103.50, 29.85, 103.56, 29.95)

    error = fails(conn, write_geojson(tmp_path / "overlap.geojson", county_with(wide_west, EAST)))

    assert "1 problem:" in error.message
    assert (
        f"feature 2 (code 511499001): 与 feature 3 (code 511499002) 重叠 {km2(wide_west & EAST)}"
        in error.message
    )
    assert (
        f"overlaps feature 3 (code 511499002) by {km2(wide_west & EAST)}, around (103.55500" in error.message
    )


def test_a_gap_between_siblings_is_a_warning_and_with_strict_an_error(conn, tmp_path):
    narrow_west = box(103.50, 29.85, 103.54, 29.95)
    path = write_geojson(tmp_path / "gap.geojson", county_with(narrow_west, EAST))

    error = fails(conn, path, strict=True)
    result = import_grids(conn, path=path)

    gap = km2(COUNTY - narrow_west - EAST)
    reason = (
        f"下级网格之间有 {gap} 的空隙，位于 (103.54500, 29.90000) 附近 / its children leave a gap of {gap} "
        "around (103.54500, 29.90000), beside feature 2 (code 511499001), feature 3 (code 511499002)"
    )
    assert error.extra["problems"] == [
        {"where": "feature 1 (code 511499)", "field": "geometry", "reason": reason}
    ]
    assert result.count == 3
    assert [str(warning) for warning in result.warnings] == [f"feature 1 (code 511499): {reason}"]
    # Kept for the coverage analytics, with its area.
    kept = conn.execute("SELECT parent_code, bordering, area_m2 FROM partition_gaps").fetchall()
    assert [(row["parent_code"], row["bordering"]) for row in kept] == [
        ("511499", ["511499001", "511499002"])
    ]
    assert f"{kept[0]['area_m2'] / 1e6:.2f} km²" == gap


def test_digitising_noise_along_shared_edges_is_tolerated(conn, tmp_path):
    # Edges off by 1e-7 degrees (about 1 cm): slivers of about 50-100 m² along 5-11 km, under 0.1 %
    # of a township, where the edges meet or the county's edge is.
    west = box(103.50, 29.85, 103.55 + 1e-7, 29.95 - 1e-7)  # overlaps EAST; a gap under the county's edge
    east = box(103.55, 29.85, 103.60 + 1e-7, 29.95)  # over the county's edge

    result = import_grids(conn, path=write_geojson(tmp_path / "noisy.geojson", county_with(west, east)))

    assert (result.count, result.warnings) == (3, [])


def test_a_long_diagonal_edge_split_by_a_vertex_leaves_no_gap(conn, tmp_path):
    # The county's 15 km diagonal edge A-B is, for its two townships, A-C and C-B with C on the line.
    # In longitude/latitude (how GEOS cuts) they meet exactly; as geodesics, A-B would bow about a
    # metre away from C and leave a "gap" of about 10,000 m², three times 0.1 % of the small township.
    a, b, c = (103.50, 29.85), (103.60, 29.95), (103.525, 29.875)
    county = Polygon([a, (103.60, 29.85), b])
    small = Polygon([a, (103.525, 29.85), c])
    rest = Polygon([(103.525, 29.85), (103.60, 29.85), b, c])
    features = [{**TREE[0], "geometry": county}, *county_with(small, rest)[1:]]

    result = import_grids(conn, path=write_geojson(tmp_path / "diagonal.geojson", features), strict=True)

    assert (result.count, result.warnings) == (3, [])


def test_the_noise_tolerance_is_relative_to_the_smallest_grid_involved(conn, tmp_path):
    # The same 1 cm overlap along 11 km (about 100 m²), but the overlapped sibling is a strip 2 m
    # wide: 0.1 % of it is about 20 m².
    west = box(103.50, 29.85, 103.55 + 1e-7, 29.95)
    strip = box(103.55, 29.85, 103.55002, 29.95)
    east = box(103.55002, 29.85, 103.60, 29.95)

    error = fails(conn, write_geojson(tmp_path / "strip.geojson", county_with(west, strip, east)))

    assert "feature 2 (code 511499001): 与 feature 3 (code 511499002) 重叠" in error.message


def test_an_overlap_with_a_grid_already_in_the_database_fails(conn, tmp_path):
    # The fixture's village 511423001001 (103.30-103.35 E) holds grids 001 and 002, split at 103.325 E.
    squeezed = {
        "code": "511423001001003",
        "name": "第三网格",
        "parent": "511423001001",
        "geometry": box(103.32, 29.85, 103.33, 29.86),
    }

    error = fails(conn, write_geojson(tmp_path / "squeezed.geojson", [squeezed]))

    assert [problem["reason"].split(" / ")[1].split(" by ")[0] for problem in error.extra["problems"]] == [
        "overlaps grid 511423001001001 (in the database)",
        "overlaps grid 511423001001002 (in the database)",
    ]


def test_the_cli_prints_a_gap_as_a_warning_and_strict_refuses_it(database_url, conn, tmp_path):
    path = write_geojson(tmp_path / "gap.geojson", county_with(box(103.50, 29.85, 103.54, 29.95), EAST))
    runner = CliRunner(env={"GRIDWATCH_DATABASE_URL": database_url})

    strict = runner.invoke(main, ["import", "grids", str(path), "--strict"])
    lenient = runner.invoke(main, ["import", "grids", str(path)])

    assert strict.exit_code == 1
    assert "import failed, nothing was changed" in strict.stderr
    assert "feature 1 (code 511499): 下级网格之间有" in strict.stderr
    assert lenient.exit_code == 0, lenient.output
    assert "warning: feature 1 (code 511499): 下级网格之间有" in lenient.stderr
    assert "imported 3 grids from gap.geojson" in lenient.stdout
    assert len(grids_by_code(conn, "511499")) == 3
