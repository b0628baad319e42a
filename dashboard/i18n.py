"""User-facing text in Simplified Chinese (default) and English."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "app.title": {"zh": "网格化管理中心 · gridwatch", "en": "Grid Management Center · gridwatch"},
    "home.heading": {"zh": "全县概况", "en": "County overview"},
    "home.grids": {"zh": "网格数", "en": "Grids"},
    "home.incidents": {"zh": "事件数", "en": "Incidents"},
    "home.open": {"zh": "在办事件", "en": "Open incidents"},
}


def translate(key: str, language: str = "zh") -> str:
    entry = MESSAGES[key]
    return entry.get(language) or entry["zh"]
