"""The frame around every dashboard page: title, navigation, the shared filters (category and
period), the signed-in user with their role, and the language switch.

The filters live in the header, which page navigation never re-renders, and keep their values
for the browser tab (Dash persistence in session storage), so every page reads the same choice.
Navigation links carry the language (``?lang=``), the language links keep the current page.
"""

from __future__ import annotations

import dash
from dash import ClientsideFunction, Dash, Input, Output, dcc, html, page_container

from dashboard import reference
from dashboard.filters import PERIODS
from dashboard.i18n import LANGUAGES, language_of_query, translate
from server.auth import current_user
from server.db import get_db
from server.errors import DatabaseUnavailable

# Each language is named in itself, so a reader finds their own whatever the page shows.
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}
# The HTML lang attribute also makes browsers pick Simplified Chinese glyphs for CJK text.
HTML_LANG = {"zh": "zh-CN", "en": "en"}
# Pages that read the header's category and period filters; elsewhere they are hidden.
FILTERED_PAGES = ("/map", "/queues", "/analytics/response", "/grid/")
PAGES = (
    ("home", "/"),
    ("map", "/map"),
    ("queues", "/queues"),
    ("response", "/analytics/response"),
    ("coverage", "/analytics/coverage"),
    ("hotspots", "/analytics/hotspots"),
)


def _category_options(language: str) -> list[dict]:
    try:
        with get_db().connection() as conn:
            return reference.options(reference.categories(conn), language)
    except DatabaseUnavailable:  # the page still renders; the header callback fills them later
        return []


def layout():
    """Built per page load (``app.layout = layout``): the filters' options must be there from the
    start, or Dash drops a value remembered for the tab before its option arrives."""
    switch = [
        dcc.Link(LANGUAGE_NAMES[language], href=f"?lang={language}", id=f"language-{language}")
        for language in LANGUAGES
    ]
    filters = html.Div(
        [
            dcc.Dropdown(
                id="filter-category",
                options=_category_options("zh"),
                multi=True,
                persistence=True,
                persistence_type="session",
                className="gw-filter gw-filter-category",
            ),
            dcc.Dropdown(
                id="filter-period",
                # Options from the start (relabelled per language later): a value without its
                # option would be cleared.
                options=_period_options("zh"),
                value="all",
                clearable=False,
                searchable=False,
                persistence=True,
                persistence_type="session",
                className="gw-filter gw-filter-period",
            ),
        ],
        className="gw-filters",
        id="filters",
    )
    return html.Div(
        [
            dcc.Location(id="url"),
            dcc.Store(id="page-left"),
            html.Header(
                [
                    html.H1(id="app-title"),
                    html.Nav(id="nav", className="gw-nav"),
                    filters,
                    html.Div(id="user-box", className="gw-user"),
                    html.Nav(switch, className="gw-languages"),
                ],
                className="gw-header",
            ),
            page_container,
        ],
        id="shell",
    )


def _period_options(language: str) -> list[dict]:
    return [{"label": translate(f"period.{key}", language), "value": key} for key in PERIODS]


def _nav(pathname: str | None, language: str) -> list:
    current = pathname or ""
    links = []
    for name, path in PAGES:
        href = dash.get_relative_path(path)
        active = current.rstrip("/") == href.rstrip("/")
        links.append(
            dcc.Link(
                translate(f"nav.{name}", language),
                href=f"{href}?lang={language}",
                id=f"nav-{name}",
                className="gw-nav-active" if active else None,
            )
        )
    return links


def _user_box(language: str, pathname: str | None) -> list:
    user = current_user()
    if user is None:
        login = dash.get_relative_path("/login")
        return [dcc.Link(translate("user.login", language), href=f"{login}?lang={language}", id="login-link")]
    return [
        html.Span(user.display_name, id="user-name"),
        html.Span(translate(f"role.{user.role}", language), id="user-role", className="gw-role"),
        html.Button(translate("user.logout", language), id="logout-button", className="gw-link-button"),
    ]


def login_prompt(language: str, path: str):
    """What a page that needs a signed-in user shows to anyone else."""
    login = dash.get_relative_path("/login")
    here = dash.get_relative_path(path)
    return html.Main(
        [
            html.P(translate("login.required", language)),
            dcc.Link(translate("user.login", language), href=f"{login}?lang={language}&next={here}"),
        ],
        id="login-required",
    )


def register_callbacks(app: Dash) -> None:
    @app.callback(
        Output("app-title", "children"),
        Output("shell", "lang"),
        Output("nav", "children"),
        Output("user-box", "children"),
        Output("filter-category", "options"),
        Output("filter-category", "placeholder"),
        Output("filter-period", "options"),
        Input("url", "search"),
        Input("url", "pathname"),
    )
    def follow_language(search: str | None, pathname: str | None):
        language = language_of_query(search)
        with get_db().connection() as conn:
            categories = reference.categories(conn)
        return (
            translate("app.title", language),
            HTML_LANG[language],
            _nav(pathname, language),
            _user_box(language, pathname),
            reference.options(categories, language),
            translate("filter.category.all", language),
            _period_options(language),
        )

    @app.callback(Output("filters", "className"), Input("url", "pathname"))
    def show_filters(pathname: str | None):
        inside = (pathname or "/").removeprefix(dash.get_relative_path("/").rstrip("/")) or "/"
        used = any(
            inside == page or (page.endswith("/") and page != "/" and inside.startswith(page))
            for page in FILTERED_PAGES
        )
        return "gw-filters" if used else "gw-filters gw-filters-hidden"

    # Leaving the live map closes it and its change feed (assets/livemap.js).
    app.clientside_callback(
        ClientsideFunction(namespace="gridwatch", function_name="leavePage"),
        Output("page-left", "data"),
        Input("url", "pathname"),
    )

    # Logging out goes through the API (the same session), then reloads the page.
    app.clientside_callback(
        """async function (clicks) {
            if (!clicks) { return window.dash_clientside.no_update; }
            await fetch("/api/v1/auth/logout", {method: "POST", credentials: "same-origin"});
            window.location.reload();
            return window.dash_clientside.no_update;
        }""",
        Output("logout-button", "title"),
        Input("logout-button", "n_clicks"),
        prevent_initial_call=True,
    )
