"""Colours of the leaders' maps, shared by the dashboard pages and the offline report."""

HOTSPOT_CLASS_COLOURS = {
    "hot_99": "#b2182b", "hot_95": "#ef8a62", "hot_90": "#fddbc7",
    "cold_99": "#2166ac", "cold_95": "#67a9cf", "cold_90": "#d1e5f0",
    "HH": "#b2182b", "HL": "#f4a582", "LH": "#92c5de", "LL": "#2166ac", "none": "#f7f7f7",
}  # fmt: skip
COVERAGE_STATUS_COLOURS = {
    "no_member": "#a50f15",
    "unpatrolled": "#fb6a4a",
    "quiet": "#fdd49e",
    "ok": "#a1d99b",
}
