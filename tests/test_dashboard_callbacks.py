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
        "state": [{"id": "map-language", "property": "data", "value": "zh"}],
        "changedPropIds": ["selected-incident.data"],
    }


def test_a_store_holding_what_the_page_never_writes_is_a_400_naming_it(client, tokens):
    request = {
        **card_request(1),
        "state": [{"id": "map-language", "property": "data", "value": {"not": "zh"}}],
    }
    response = client.post(CALLBACK, json=request, headers={"Authorization": f"Bearer {tokens['operator1']}"})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "map-language.data"


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


GARBAGE = ["garbage", 12345, -1, None, [1, "x"], {"a": {"b": 1}}, "\u0000", "1e309", True]


def callback_request(dependency: dict, value) -> dict:
    """The request the page would send for ``dependency``, every input and state set to ``value``."""

    def prop(item: dict) -> dict:
        return {"id": item["id"], "property": item["property"], "value": value}

    output = dependency["output"]
    outputs = [
        {"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1].split("@")[0]}
        for part in output.strip(".").split("...")
    ]
    return {
        "output": output,
        "outputs": outputs if output.startswith("..") else outputs[0],
        "inputs": [prop(item) for item in dependency["inputs"]],
        "state": [prop(item) for item in dependency["state"]],
        "changedPropIds": [f"{item['id']}.{item['property']}" for item in dependency["inputs"][:1]],
    }


@pytest.mark.parametrize("caller", ["operator1", "leader1", "inspector1"])
def test_no_callback_fails_on_what_a_page_would_never_send(client, tokens, caller):
    """Every server-side callback, every input and state set to each of several wrong values:
    an answer, never a 500."""
    dependencies = client.get("/dashboard/_dash-dependencies").get_json()
    server_side = [d for d in dependencies if not d.get("clientside_function") and "{" not in d["output"]]
    assert len(server_side) >= 15
    failures = []
    for dependency in server_side:
        for value in GARBAGE:
            response = client.post(
                CALLBACK,
                data=json.dumps(callback_request(dependency, value)),
                content_type="application/json",
                headers={"Authorization": f"Bearer {tokens[caller]}"},
            )
            if response.status_code >= 500:
                failures.append((dependency["output"][:80], value))
    assert failures == [], sorted({f[0] for f in failures})
