"""Hot and cold spots (GET /api/v1/analytics/hotspots) on the demo county: the statistics equal
PySAL's on weights built independently from the returned outlines, the FDR decision is
Benjamini-Hochberg's, a planted cluster is found and a random county is not, rates per household
change the answer, and bad input is a 4xx naming the field."""

from __future__ import annotations

import functools
from datetime import datetime
from zoneinfo import ZoneInfo

import esda
import geopandas
import numpy as np
import psycopg
import pytest
import shapely
from database_support import database_with
from libpysal.weights import W, fuzzy_contiguity
from tiles_support import bearer, token_for

from server.analytics.hotspots import local_statistics
from server.app import create_app
from server.demo import load_demo
from server.settings import Settings

CHINA = ZoneInfo("Asia/Shanghai")
UNTIL = datetime(2026, 6, 1, tzinfo=CHINA)
YEAR = {"from": "2025-06-01", "to": "2026-06-01"}


@pytest.fixture(scope="module")
def hotspot_url(pg_cluster):
    load = functools.partial(load_demo, seed=7, incident_count=6000, until=UNTIL)
    with database_with(pg_cluster, "gridwatch_hotspots_module", load) as url:
        yield url


@pytest.fixture(scope="module")
def client(hotspot_url, tmp_path_factory):
    app = create_app(
        Settings(database_url=hotspot_url, var_dir=tmp_path_factory.mktemp("var"), secret_key="t")
    )
    yield app.test_client()
    app.extensions["gridwatch.db"].close()


@pytest.fixture(scope="module")
def get(client, hotspot_url):
    leader = bearer(token_for(hotspot_url, "demo_leader"))

    def get(**params):
        response = client.get("/api/v1/analytics/hotspots", query_string={**YEAR, **params}, headers=leader)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return get


def queen_of(shapes) -> W:
    """Queen contiguity by libpysal and shapely (not PostGIS or h3): units sharing at least a
    point (a T-junction, where one unit's corner lies on another's edge, counts)."""
    return fuzzy_contiguity(
        geopandas.GeoSeries(shapes), buffering=False, predicate="intersects", silence_warnings=True
    )


def stored_outlines(url: str, level: str) -> list:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT ST_AsBinary(geom) FROM grids WHERE level = %s ORDER BY code", [level])
        return [shapely.from_wkb(bytes(wkb)) for (wkb,) in rows]


def returned_outlines(body) -> list:
    return [shapely.geometry.shape(f["geometry"]) for f in body["features"]]


def values(body, name="value") -> np.ndarray:
    return np.array([f["properties"][name] for f in body["features"]], dtype=float)


@pytest.mark.parametrize("method", ["gi_star", "local_moran"])
@pytest.mark.parametrize("unit", ["grid", "h3"])
def test_the_statistics_equal_esda_s(get, hotspot_url, unit, method):
    params = {"unit": unit, "method": method, "category": "sanitation", "permutations": 99}
    body = get(**params, **({"resolution": 8} if unit == "h3" else {}))
    assert body["units"] == len(body["features"]) > 2000  # every unit of the county, zeros included
    assert min(values(body, "count")) == 0
    if unit == "grid":
        weights = queen_of(stored_outlines(hotspot_url, "grid"))
        assert body["weights"] == {
            "kind": "queen",
            "binary": True,
            "self_included": method == "gi_star",
            "islands": 0,
        }
    else:
        assert all(f["properties"]["unit"].startswith("88") for f in body["features"])  # resolution 8
        weights = queen_of(returned_outlines(body))
        assert body["weights"]["kind"] == "h3_ring_1"
    if method == "gi_star":
        expected = esda.G_Local(values(body), weights, transform="B", star=True, permutations=0).Zs
        np.testing.assert_allclose(values(body, "gi_z"), expected, rtol=0, atol=1e-9)
    else:
        expected = esda.Moran_Local(values(body), weights, transformation="r", permutations=0).Is
        np.testing.assert_allclose(values(body, "local_i"), expected, rtol=0, atol=1e-9)
        assert {f["properties"]["class"] for f in body["features"]} <= {"HH", "LL", "HL", "LH", "none"}


def benjamini_hochberg(p: np.ndarray, alpha: float) -> np.ndarray:
    """By hand: the largest k with p_(k) <= k alpha / m, and every p up to it."""
    order = np.sort(p)
    passing = np.flatnonzero(order <= np.arange(1, len(p) + 1) * alpha / len(p))
    return p <= (order[passing[-1]] if len(passing) else -1.0)


def test_the_fdr_decision_is_benjamini_hochberg_on_the_returned_p_values(get, hotspot_url):
    body = get(unit="grid", permutations=199)
    significant = np.array([f["properties"]["significant"] for f in body["features"]])
    np.testing.assert_array_equal(significant, benjamini_hochberg(values(body, "p"), 0.05))
    # And where many units stand out: a smooth trend across the county, with noise.
    weights = queen_of(stored_outlines(hotspot_url, "grid"))
    trend = np.linspace(0, 20, weights.n) + np.random.default_rng(3).normal(0, 2, weights.n)
    found = local_statistics(trend, weights.neighbors, method="gi_star", permutations=999, alpha=0.10)
    decided = np.array([unit["significant"] for unit in found])
    np.testing.assert_array_equal(decided, benjamini_hochberg(np.array([u["p"] for u in found]), 0.10))
    assert 0.2 < decided.mean() < 1


def test_a_planted_cluster_of_straw_burning_is_hot_at_99(get, hotspot_url):
    with psycopg.connect(hotspot_url) as conn:
        village = conn.execute(
            """SELECT v.code FROM grids v WHERE v.level = 'village'
                ORDER BY (SELECT count(*) FROM grids g WHERE g.parent_id = v.id) DESC, v.code LIMIT 1"""
        ).fetchone()[0]
        grids = [
            code
            for (code,) in conn.execute(
                """SELECT g.code FROM grids g JOIN grids v ON g.parent_id = v.id WHERE v.code = %s""",
                [village],
            )
        ]
        conn.execute(
            """INSERT INTO incidents (geom, grid_id, category_code, channel, reported_at)
               SELECT ST_PointOnSurface(g.geom), g.id, 'straw_burning', 'app',
                      timestamptz '2026-04-01 10:00+08' + n * interval '1 hour'
                 FROM grids g JOIN grids v ON g.parent_id = v.id, generate_series(1, 30) AS n
                WHERE v.code = %s""",
            [village],
        )
    body = get(unit="grid", category="straw_burning", permutations=9999)
    classes = {f["properties"]["unit"]: f["properties"]["class"] for f in body["features"]}
    found = [classes[code] for code in grids]
    # Every grid of the village is hot; all but a few on its edge (whose neighbours outside it
    # are quiet) at 99 %.
    assert set(found) <= {"hot_99", "hot_95"}, (village, found)
    assert found.count("hot_99") >= 0.9 * len(found), (village, found)
    far = [f for f in body["features"] if not f["properties"]["unit"].startswith(village[:9])]
    assert sum(f["properties"]["class"].startswith("hot") for f in far) < 0.01 * len(far)


def test_a_random_county_is_almost_all_none(hotspot_url):
    weights = queen_of(stored_outlines(hotspot_url, "grid"))
    random_counts = np.random.default_rng(5).poisson(3.0, weights.n).astype(float)
    found = local_statistics(random_counts, weights.neighbors, method="gi_star", permutations=999, alpha=0.05)
    assert sum(unit["significant"] for unit in found) <= 0.01 * weights.n


def test_rates_per_household_move_a_big_quiet_grid_out_of_the_hot_class(get, hotspot_url):
    body = get(unit="grid", category="dispute", permutations=999)
    hottest = max(body["features"], key=lambda f: f["properties"]["gi_z"] or -1)["properties"]
    assert hottest["class"].startswith("hot")
    # Give that grid and its neighbours' households a hundredfold: as many disputes, far fewer per home.
    with psycopg.connect(hotspot_url) as conn:
        conn.execute(
            """UPDATE grids SET households = households * 100
                WHERE level = 'grid' AND geom && (SELECT ST_Expand(geom, 0.01) FROM grids WHERE code = %s)""",
            [hottest["unit"]],
        )
    try:
        by_rate = get(unit="grid", category="dispute", measure="per_100_households", permutations=999)
        mine = next(
            f["properties"] for f in by_rate["features"] if f["properties"]["unit"] == hottest["unit"]
        )
        assert not mine["class"].startswith("hot")
        assert mine["value"] == pytest.approx(100 * mine["count"] / mine["households"], abs=1e-4)
    finally:
        with psycopg.connect(hotspot_url) as conn:
            conn.execute(
                """UPDATE grids SET households = households / 100
                    WHERE level = 'grid'
                      AND geom && (SELECT ST_Expand(geom, 0.01) FROM grids WHERE code = %s)""",
                [hottest["unit"]],
            )


def test_a_repeat_is_served_from_the_cache_until_the_data_change(get, hotspot_url):
    first = get(unit="township", permutations=99)
    assert get(unit="township", permutations=99)["computed_at"] == first["computed_at"]
    with psycopg.connect(hotspot_url) as conn:
        conn.execute(
            """INSERT INTO incidents (geom, grid_id, category_code, channel, reported_at)
               SELECT ST_PointOnSurface(geom), id, 'dispute', 'app', timestamptz '2026-05-01 10:00+08'
                 FROM grids WHERE level = 'grid' ORDER BY code LIMIT 1"""
        )
    again = get(unit="township", permutations=99)
    assert again["data_version"] != first["data_version"]
    assert sum(values(again, "count")) == sum(values(first, "count")) + 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"unit": "parish"}, "unit"),
        ({"unit": "h3", "resolution": "12"}, "resolution"),
        ({"unit": "grid", "resolution": "8"}, "resolution"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "to"),
        ({"permutations": "100000"}, "permutations"),
        ({"unit": "h3", "measure": "per_100_households"}, "measure"),
        ({"status": "lost"}, "status"),
        ({"alpha": "0.5"}, "alpha"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client, hotspot_url, params, field):
    leader = bearer(token_for(hotspot_url, "demo_leader"))
    response = client.get("/api/v1/analytics/hotspots", query_string=params, headers=leader)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    assert response.get_json()["error"]["field"] == field


@pytest.mark.parametrize("username", ["demo_inspector", "demo_department"])
@pytest.mark.parametrize("path", ["/api/v1/analytics/hotspots", "/api/v1/analytics/emerging-hotspots"])
def test_inspectors_and_department_handlers_may_not_read_the_county_s_hotspots(
    client, hotspot_url, username, path
):
    response = client.get(path, headers=bearer(token_for(hotspot_url, username)))
    assert response.status_code == 403
    assert response.get_json()["error"]
