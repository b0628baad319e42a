"""The live map's style (basemap or none, GCJ-02 shift), the shared period filter and the
language's number and time formats."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from dashboard.filters import Period, resolve_period
from dashboard.i18n import format_count, format_duration, format_time
from dashboard.mapstyle import Basemap, build_style, count_text, gcj02_shift, gcj02_translate, legend
from server.settings import Settings

HONGYA = (103.37, 29.70)
LABELS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "洪川镇", "level": "township"},
            "geometry": {"type": "Point", "coordinates": [103.37, 29.9]},
        }
    ],
}


def layer(style: dict, layer_id: str) -> dict:
    return next(item for item in style["layers"] if item["id"] == layer_id)


def test_without_a_basemap_the_map_draws_gridwatchs_own_outlines_and_names():
    style = build_style(language="zh", basemap=None, centre=HONGYA, labels=LABELS)
    assert style["layers"][0]["id"] == "grid-fill"  # the page's own background below
    assert "basemap" not in style["sources"]
    assert style["sources"]["grids"]["tiles"] == ["/tiles/grids/{z}/{x}/{y}.mvt"]
    assert style["sources"]["density"]["tiles"] == ["/tiles/incident_density/{z}/{x}/{y}.mvt"]
    assert layer(style, "grid-outline")["source"] == "grids"
    # Place names: one point per place from gridwatch, each level at the zooms its grids show.
    assert style["sources"]["labels"] == {"type": "geojson", "data": LABELS}
    township, village, grid = (layer(style, f"labels-{level}") for level in ("township", "village", "grid"))
    assert township["layout"]["text-field"] == ["get", "name"]
    assert (township["minzoom"], township["maxzoom"]) == (5, 10)
    assert (village["minzoom"], village["maxzoom"]) == (10, 13)
    assert grid["minzoom"] == 13 and "maxzoom" not in grid
    assert grid["filter"] == ["==", ["get", "level"], "grid"]
    # No glyph server: MapLibre draws label glyphs with the local fonts.
    assert "glyphs" not in style
    assert style["sources"]["grids"]["attribution"] == "网格数据 © gridwatch"
    assert layer(style, "grid-fill")["paint"]["fill-translate"] == [0, 0]


def test_the_legend_shows_the_heatmap_colours_the_style_draws():
    style = build_style(language="en", basemap=None, centre=HONGYA, labels=LABELS)
    fill = layer(style, "density")["paint"]["fill-color"]
    stops = list(zip(fill[3::2], fill[4::2], strict=True))
    entries = legend("en", [])["heatmap"]
    assert [entry["colour"] for entry in entries] == [colour for _, colour in stops]
    assert [entry["label"] for entry in entries] == ["1", "20", "200", "2,000+"]


def test_a_configured_basemap_lies_under_everything():
    basemap = Basemap("https://tiles.county.example/{z}/{x}/{y}.png", "© 县测绘院", "wgs84")
    style = build_style(language="en", basemap=basemap, centre=HONGYA, labels=LABELS)
    assert style["sources"]["basemap"] == {
        "type": "raster",
        "tiles": ["https://tiles.county.example/{z}/{x}/{y}.png"],
        "tileSize": 256,
        "attribution": "© 县测绘院",
    }
    assert style["layers"][0] == {"id": "basemap", "type": "raster", "source": "basemap"}
    assert style["sources"]["grids"]["attribution"] == "Grid data © gridwatch"


def test_over_a_gcj02_basemap_the_overlay_is_shifted_by_the_local_offset():
    shift_lon, shift_lat = gcj02_shift(*HONGYA)
    # GCJ-02 moves points in Sichuan by some hundreds of metres.
    assert 0.001 < abs(shift_lon) < 0.01 and 0.001 < abs(shift_lat) < 0.01
    basemap = Basemap("https://example.invalid/{z}/{x}/{y}", "", "gcj02")
    style = build_style(language="zh", basemap=basemap, centre=HONGYA, labels=LABELS)
    translate = layer(style, "incident-points")["paint"]["circle-translate"]
    dx, dy = gcj02_translate(*HONGYA)
    assert translate == ["interpolate", ["exponential", 2], ["zoom"], 0, ["literal", [dx, dy]],
                         24, ["literal", [dx * 2**24, dy * 2**24]]]  # fmt: skip
    assert dx == pytest.approx(shift_lon / 360 * 512)
    assert (dy < 0) == (shift_lat > 0)  # north is up the screen


def test_map_counts_are_written_as_each_language_writes_them():
    assert count_text("en", ["get", "count"])[0] == "number-format"
    assert count_text("zh", ["get", "count"])[0] == "case"
    assert format_count(123_456, "en") == "123,456"
    assert format_count(123_456, "zh") == "12.3万"
    assert format_count(20_000, "zh") == "2万"
    assert format_count(9_876, "zh") == "9,876"


def test_times_and_durations_follow_the_language_in_county_time():
    at = datetime(2026, 6, 1, 1, 5, tzinfo=UTC)
    assert format_time(at, "zh") == format_time(at, "en") == "2026-06-01 09:05"
    assert format_time(None, "en") == "—"
    assert format_duration(timedelta(days=2, hours=3, minutes=4), "zh") == "2天3小时"
    assert format_duration(timedelta(hours=3, minutes=4), "en") == "3 h 4 min"
    assert format_duration(timedelta(seconds=20), "en") == "0 min"


@pytest.mark.parametrize(
    ("key", "first", "end", "param"),
    [
        ("month", date(2026, 1, 1), date(2026, 2, 1), "2026-01..2026-01"),
        ("3m", date(2025, 11, 1), date(2026, 2, 1), "2025-11..2026-01"),
        ("year", date(2026, 1, 1), date(2026, 2, 1), "2026-01..2026-01"),
        ("12m", date(2025, 2, 1), date(2026, 2, 1), "2025-02..2026-01"),
    ],
)
def test_periods_are_resolved_against_the_county_date(key, first, end, param):
    # 2025-12-31 20:00 UTC is already 1 January in China.
    period = resolve_period(key, datetime(2025, 12, 31, 20, 0, tzinfo=UTC))
    assert period == Period(first, end)
    assert period.tile_param() == param


def test_all_time_and_unknown_periods_do_not_filter():
    assert resolve_period("all", datetime(2026, 1, 1, tzinfo=UTC)) is None
    assert resolve_period("'; DROP TABLE incidents", datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_basemap_settings_are_checked():
    assert (
        Settings(basemap_url="https://t0.example/{z}/{x}/{y}.png", basemap_crs="gcj02").basemap_crs == "gcj02"
    )
    with pytest.raises(ValidationError):
        Settings(basemap_url="https://t0.example/tiles.png")
    with pytest.raises(ValidationError):
        Settings(basemap_crs="bd09")
