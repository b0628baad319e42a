"""Dash callbacks as a script would call them: anonymous callers get the shell and the login
form only, and values the page would never send are ignored, never a 500."""

from __future__ import annotations

import json

import pytest

CALLBACK = "/dashboard/_dash-update-component"
COUNTERS = ("new_today", "open", "overdue", "closed_today")


def counters_request() -> dict:
    outputs = [{"id": f"counter-{name}", "property": "children"} for name in COUNTERS]
    return {
        "output": "".join(f"..counter-{name}.children." for name in COUNTERS) + ".",
        "outputs": outputs,
        "inputs": [
            {"id": "live-tick", "property": "data", "value": 1},
            {"id": "filter-category", "property": "value", "value": []},
        ],
        "state": [
            {"id": "counted-categories", "property": "data", "value": None},
            {"id": "map-language", "property": "data", "value": "zh"},
        ],
        "changedPropIds": ["live-tick.data"],
    }


def overdue_request(view) -> dict:
    return {
        "output": "overdue-ids.data",
        "outputs": {"id": "overdue-ids", "property": "data"},
        "inputs": [
            {"id": "live-tick", "property": "data", "value": 1},
            {"id": "filter-category", "property": "value", "value": []},
            {"id": "map-view", "property": "data", "value": view},
        ],
        "changedPropIds": ["map-view.data"],
    }


def card_request(incident_id) -> dict:
    return {
        "output": "incident-card.children",
        "outputs": {"id": "incident-card", "property": "children"},
        "inputs": [
            {"id": "selected-incident", "property": "data", "value": incident_id},
            {"id": "card-refresh", "property": "data", "value": None},
        ],
        "state": [{"id": "map-language", "property": "data", "value": {"not": "a language"}}],
        "changedPropIds": ["selected-incident.data"],
    }


def test_anonymous_callers_get_no_county_figures(client):
    response = client.post(CALLBACK, json=counters_request())
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
    assert client.post(CALLBACK, json=overdue_request([103.0, 29.0, 104.0, 30.0])).status_code == 401
    assert client.post(CALLBACK, data="not json", content_type="application/json").status_code == 401


def test_anonymous_callers_get_the_shell_that_shows_the_login_link(client):
    shell = {
        "output": "..app-title.children...shell.lang...nav.children...user-box.children..."
        "filter-category.options...filter-category.placeholder...filter-period.options..",
        "outputs": [
            {"id": i, "property": p}
            for i, p in [
                ("app-title", "children"),
                ("shell", "lang"),
                ("nav", "children"),
                ("user-box", "children"),
                ("filter-category", "options"),
                ("filter-category", "placeholder"),
                ("filter-period", "options"),
            ]
        ],
        "inputs": [
            {"id": "url", "property": "search", "value": "?lang=en"},
            {"id": "url", "property": "pathname", "value": "/dashboard/"},
        ],
        "changedPropIds": ["url.search"],
    }
    response = client.post(CALLBACK, json=shell)
    assert response.status_code == 200
    assert "login-link" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "view",
    [
        "garbage",
        [1, 2],
        {"a": 1},
        [103.0, 29.0, "x", 30.0],
        [103.0, 29.0, float("nan"), 30.0],
        [[1], 2, 3, 4],
    ],
)
def test_a_malformed_view_is_no_view(client, tokens, view):
    response = client.post(
        CALLBACK,
        data=json.dumps(overdue_request(view)),  # NaN as JavaScript would send it
        content_type="application/json",
        headers={"Authorization": f"Bearer {tokens['operator1']}"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["response"]["overdue-ids"]["data"] == []


@pytest.mark.parametrize("incident_id", ["1; DROP TABLE incidents", [1], {"id": 1}, 2**70, True, -5])
def test_a_malformed_incident_shows_no_card(client, tokens, incident_id):
    response = client.post(
        CALLBACK, json=card_request(incident_id), headers={"Authorization": f"Bearer {tokens['operator1']}"}
    )
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    if response.status_code == 200:
        assert response.get_json()["response"]["incident-card"]["children"] is None
