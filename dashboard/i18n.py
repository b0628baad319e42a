"""User-facing text in Simplified Chinese (default) and English.

The language is chosen per URL with ``?lang=zh|en`` (links and bookmarks keep it); without it the
configured ``GRIDWATCH_DEFAULT_LANGUAGE`` applies.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from flask import current_app

LANGUAGES = ("zh", "en")

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


def resolve_language(requested: str | None) -> str:
    """The requested language when gridwatch speaks it, else the configured default."""
    if requested in LANGUAGES:
        return requested
    return current_app.extensions["gridwatch.settings"].default_language


def language_of_query(search: str | None) -> str:
    """The language asked for by a URL query string such as ``?lang=en``."""
    return resolve_language(parse_qs((search or "").lstrip("?")).get("lang", [None])[0])
