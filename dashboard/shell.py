"""The frame around every dashboard page: title and language switch.

A placeholder for the dashboard issue's real shell (navigation, user, filters).
"""

from __future__ import annotations

from dash import Dash, Input, Output, dcc, html, page_container

from dashboard.i18n import LANGUAGES, language_of_query, translate

# Each language is named in itself, so a reader finds their own whatever the page shows.
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}
# The HTML lang attribute also makes browsers pick Simplified Chinese glyphs for CJK text.
HTML_LANG = {"zh": "zh-CN", "en": "en"}


def layout():
    switch = [
        dcc.Link(LANGUAGE_NAMES[language], href=f"?lang={language}", id=f"language-{language}")
        for language in LANGUAGES
    ]
    return html.Div(
        [
            dcc.Location(id="url"),
            html.Header(
                [html.H1(id="app-title"), html.Nav(switch, className="gw-languages")],
                className="gw-header",
            ),
            page_container,
        ],
        id="shell",
    )


def register_callbacks(app: Dash) -> None:
    @app.callback(Output("app-title", "children"), Output("shell", "lang"), Input("url", "search"))
    def follow_language(search: str | None) -> tuple[str, str]:
        language = language_of_query(search)
        return translate("app.title", language), HTML_LANG[language]
