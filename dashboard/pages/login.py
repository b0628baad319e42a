"""Logging in: the form posts to the API's login (``/api/v1/auth/login``), which sets the session
cookie the dashboard and the API share, then returns to the page the user came from."""

from __future__ import annotations

import dash
from dash import Input, Output, State, clientside_callback, dcc, html

from dashboard.i18n import resolve_language, translate

dash.register_page(__name__, path="/login", name="login")


def layout(lang: str | None = None, next: str | None = None, **_query):  # noqa: A002 - the URL's name
    language = resolve_language(lang)
    # Only a path inside the dashboard: a login link must not send the user elsewhere.
    target = next if next and next.startswith(dash.get_relative_path("/")) else dash.get_relative_path("/map")
    return html.Main(
        [
            html.H2(translate("login.heading", language)),
            html.Form(
                [
                    html.Label([translate("login.username", language), dcc.Input(id="login-username")]),
                    html.Label(
                        [
                            translate("login.password", language),
                            dcc.Input(id="login-password", type="password"),
                        ]
                    ),
                    html.Button(translate("login.submit", language), id="login-submit", type="button"),
                    html.Div(id="login-error", className="gw-error"),
                ],
                className="gw-login",
            ),
            dcc.Store(id="login-target", data=f"{target}?lang={language}"),
        ],
        className="gw-login-page",
    )


clientside_callback(
    """async function (clicks, submits, username, password, target) {
        const response = await fetch("/api/v1/auth/login", {
            method: "POST",
            credentials: "same-origin",
            // The refusal comes in the page's language (?lang=), as every error does.
            headers: {
                "Content-Type": "application/json",
                "Accept-Language": new URLSearchParams(window.location.search).get("lang") || "zh",
            },
            body: JSON.stringify({username: username || "", password: password || ""}),
        });
        if (response.ok) {
            window.location.assign(target);
            return "";
        }
        const body = await response.json();
        return body.error.message;
    }""",
    Output("login-error", "children"),
    Input("login-submit", "n_clicks"),
    Input("login-password", "n_submit"),
    State("login-username", "value"),
    State("login-password", "value"),
    State("login-target", "data"),
    prevent_initial_call=True,
)
