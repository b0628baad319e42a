"""GCJ-02 ↔ WGS84 (server.coords) against the published reference pair of the coordtransform project."""

import pytest

from server.coords import gcj02_to_wgs84, outside_china, wgs84_to_gcj02


def test_forward_matches_the_reference_pair():
    # Reference: wgs84togcj02(116.404, 39.915) = [116.41024449916938, 39.91640428150164]
    assert wgs84_to_gcj02(116.404, 39.915) == pytest.approx(
        (116.41024449916938, 39.91640428150164), abs=1e-12
    )


def test_inverse_is_closer_than_the_one_step_reference():
    lon, lat = gcj02_to_wgs84(116.404, 39.915)
    # The reference's one-step inverse gives [116.39775550083061, 39.91359571849836]; the
    # iterated inverse lands within a few centimetres of it and maps back exactly.
    assert (lon, lat) == pytest.approx((116.39775550083061, 39.91359571849836), abs=1e-6)
    assert wgs84_to_gcj02(lon, lat) == pytest.approx((116.404, 39.915), abs=1e-9)


@pytest.mark.parametrize("point", [(103.37, 29.90), (121.47, 31.23), (87.6, 43.8), (126.6, 45.75)])
def test_round_trips_across_china(point):
    assert gcj02_to_wgs84(*wgs84_to_gcj02(*point)) == pytest.approx(point, abs=1e-9)
    assert 50 < abs(wgs84_to_gcj02(*point)[0] - point[0]) * 111_000 < 1000  # a real offset


def test_no_offset_outside_china():
    assert outside_china(2.35, 48.85)
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert gcj02_to_wgs84(2.35, 48.85) == (2.35, 48.85)
