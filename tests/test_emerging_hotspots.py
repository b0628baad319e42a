"""Emerging hot and cold spots: the pattern rules on the reference sequences
(../shared/EMERGING_HOTSPOTS.md, section 3), Mann-Kendall on its checks, the space-time Gi*
against esda, and the API on the demo county."""

from __future__ import annotations

import functools
from datetime import datetime
from zoneinfo import ZoneInfo

import esda
import numpy as np
import pytest
from database_support import database_with
from libpysal.weights import W, lat2W
from scipy import sparse
from tiles_support import bearer, token_for

from server.analytics.emerging import mann_kendall, pattern, space_time_gi_star
from server.app import create_app
from server.demo import load_demo
from server.settings import Settings

SEQUENCES = [
    (".........H", "any", "new_hot"),
    ("......HHHH", "any", "consecutive_hot"),
    (".HHHHHHHHH", "up", "intensifying_hot"),
    ("HHHHHHHHHH", "none", "persistent_hot"),
    ("HHHHHHHH.H", "down", "diminishing_hot"),
    ("..H..H...H", "any", "sporadic_hot"),
    ("..C...H.HH", "any", "oscillating_hot"),
    ("HHHHHHHHH.", "down", "historical_hot"),
    (".........C", "any", "new_cold"),
    (".....CCCCC", "any", "consecutive_cold"),
    ("CCCCCCCCCC", "down", "intensifying_cold"),
    ("C.CCCCCCCC", "none", "persistent_cold"),
    ("CCCCCCC.CC", "up", "diminishing_cold"),
    (".C..C...CC", "any", "sporadic_cold"),
    ("H.....C.CC", "any", "oscillating_cold"),
    ("CCCCCCCCC.", "up", "historical_cold"),
    ("..H..C....", "any", "no_pattern"),
    ("........HH", "any", "consecutive_hot"),
    ("........H.", "any", "no_pattern"),
    ("HHHHHHHH..", "any", "no_pattern"),
    ("H..HHHHHHH", "any", "sporadic_hot"),
    ("HHHHHHHHH.", "none", "historical_hot"),
    ("HHHHHHHHHC", "any", "oscillating_cold"),
    ("....CCHHHH", "any", "oscillating_hot"),
    ("CCCCCHHHHH", "any", "oscillating_hot"),
]


@pytest.mark.parametrize(("classes", "trend", "expected"), SEQUENCES)
def test_the_reference_sequences_get_their_pattern(classes, trend, expected):
    trends = ("up", "down", "none") if trend == "any" else (trend,)
    assert {pattern(classes, each) for each in trends} == {expected}


def test_mann_kendall_matches_the_reference_checks():
    rising = np.arange(1, 11, dtype=float)
    series = np.array(
        [
            rising,
            rising[::-1],
            [1, 1, 2, 2, 3, 3, 4, 4, 5, 5],
            [2.5, 2.4, 2.6, 2.5, 2.7, 2.4, 2.6, 2.5, 2.6, 2.5],
        ]
    )
    s, z, p = mann_kendall(series)
    assert list(s) == [45, -45, 40, 5]
    assert z[0] == pytest.approx(3.935, abs=1e-3) and p[0] == pytest.approx(8.3e-5, rel=0.02)
    assert z[1] == pytest.approx(-3.935, abs=1e-3)
    assert z[2] == pytest.approx(3.560, abs=1e-3) and p[2] == pytest.approx(3.7e-4, rel=0.02)
    assert z[3] == pytest.approx(0.379, abs=1e-3) and p[3] == pytest.approx(0.705, abs=1e-3)
    # Any S = 23 (eleven pairs out of order among ten distinct values): p = 0.0491.
    s, _, p = mann_kendall(np.array([[4, 3, 2, 1, 7, 6, 8, 5, 10, 9]], dtype=float))
    assert s[0] == 23 and p[0] == pytest.approx(0.0491, abs=1e-4)


def test_the_space_time_gi_star_equals_esda_on_the_cube():
    """Each bin's neighbours: its unit and the unit's neighbours, at its slice and the one
    before; esda's Gi* on that graph (the bin itself added by star=True) gives the same z."""
    space = lat2W(4, 4)  # 16 units, rook neighbours
    slices = 6
    counts = np.random.default_rng(11).poisson(4, (space.n, slices)).astype(float)
    adjacency = sparse.csr_matrix(space.sparse)
    node = lambda unit, t: unit * slices + t  # noqa: E731
    neighbours = {}
    for unit in range(space.n):
        for t in range(slices):
            around = [node(j, t) for j in space.neighbors[unit]]
            if t > 0:
                around += [node(unit, t - 1)] + [node(j, t - 1) for j in space.neighbors[unit]]
            neighbours[node(unit, t)] = around
    cube = W(neighbours, silence_warnings=True)
    expected = esda.G_Local(counts.ravel(), cube, transform="B", star=True, permutations=0).Zs
    np.testing.assert_allclose(space_time_gi_star(counts, adjacency).ravel(), expected, rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def get(pg_cluster, tmp_path_factory):
    load = functools.partial(
        load_demo, seed=7, incident_count=6000, until=datetime(2026, 6, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    )
    with database_with(pg_cluster, "gridwatch_emerging_module", load) as url:
        app = create_app(Settings(database_url=url, var_dir=tmp_path_factory.mktemp("var"), secret_key="t"))
        leader = bearer(token_for(url, "demo_leader"))
        client = app.test_client()
        yield lambda **params: client.get(
            "/api/v1/analytics/emerging-hotspots", query_string=params, headers=leader
        )
        app.extensions["gridwatch.db"].close()


def test_every_grid_gets_a_pattern_over_complete_months(get):
    response = get(unit="grid", **{"from": "2025-06-01", "to": "2026-06-01"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["slices"][0] == "2025-06-01" and len(body["slices"]) == 12
    assert body["units"] == len(body["features"]) > 2000
    patterns = {f["properties"]["pattern"] for f in body["features"]}
    assert "no_pattern" in patterns
    for feature in body["features"][:50]:
        properties = feature["properties"]
        assert len(properties["slice_classes"]) == len(properties["slice_z"]) == 12
        assert properties["pattern"] == pattern(properties["slice_classes"], properties["trend"])
        assert sum(properties["slice_counts"]) == properties["count"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-01-01", "to": "2026-06-01"}, "from"),  # five months: fewer than ten slices
        ({"slice": "week", "from": "2016-01-01", "to": "2026-01-01"}, "to"),  # ten years of weeks
        ({"slice": "day"}, "slice"),
        ({"unit": "h3", "resolution": "12"}, "resolution"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(get, params, field):
    response = get(**params)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    assert response.get_json()["error"]["field"] == field
