"""What a careless client or an attacker sends: every case answered 500 or lost data before the
inputs were declared once (server/schema.py). Each is a 4xx naming the field, and writes nothing.
Also: every ``/api/v1`` endpoint is in the OpenAPI document, derived from its view."""

from __future__ import annotations

import io
import json

import pytest
from workflow_helpers import OWN_POINT

from server.openapi import undocumented_rules


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


FILING = {"lon": OWN_POINT[0], "lat": OWN_POINT[1], "category": "sanitation", "description": "河边垃圾"}


def incident_count(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"]


def assert_refused(response, status: int, field: str) -> None:
    body = response.get_json()
    assert response.status_code == status, body
    assert body["error"]["field"] == field, body


def test_every_api_endpoint_is_documented_from_its_view(app):
    assert undocumented_rules(app) == ["/api/v1/docs", "/api/v1/events", "/api/v1/openapi.json"]


@pytest.mark.parametrize("depth", [17, 1000, 100_000])
def test_json_nested_deeper_than_a_body_needs_is_refused_before_parsing(client, tokens, conn, depth):
    before = incident_count(conn)
    body = '{"lon": 103.3, "lat": 29.9, "category": "sanitation", "x": ' + "[" * depth + "]" * depth + "}"
    response = client.post(
        "/api/v1/incidents",
        data=body,
        content_type="application/json",
        headers=bearer(tokens["operator1"]),
    )
    assert_refused(response, 400, "body")
    assert incident_count(conn) == before


def test_brackets_inside_strings_are_not_nesting(client, tokens):
    response = client.post(
        "/api/v1/incidents",
        json={**FILING, "description": "[" * 200 + "{{"},
        headers=bearer(tokens["operator1"]),
    )
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**FILING, "description": "坏了\ud800"}, "description"),
        ({**FILING, "reporter_name": "\udfff"}, "reporter_name"),
        ({**FILING, "category": "sanitation\ud800"}, "category"),
    ],
)
def test_lone_surrogates_are_refused_naming_the_field(client, tokens, conn, body, field):
    before = incident_count(conn)
    # json.dumps escapes the surrogate ("\\ud800"), as a client's JSON encoder would send it.
    response = client.post(
        "/api/v1/incidents",
        data=json.dumps(body),
        content_type="application/json",
        headers=bearer(tokens["operator1"]),
    )
    assert_refused(response, 400, field)
    assert incident_count(conn) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**FILING, "descripton": "typo: the text would be lost"}, "descripton"),
        ({**FILING, "Description": "another case"}, "Description"),
    ],
)
def test_unknown_fields_are_422_and_nothing_is_written(client, tokens, conn, body, field):
    before = incident_count(conn)
    response = client.post("/api/v1/incidents", json=body, headers=bearer(tokens["operator1"]))
    assert_refused(response, 422, field)
    assert response.get_json()["error"]["code"] == "unknown_field"
    assert incident_count(conn) == before


def test_a_photo_under_another_name_is_refused_not_dropped(client, tokens, conn):
    before = incident_count(conn)
    response = client.post(
        "/api/v1/incidents",
        data={**{k: str(v) for k, v in FILING.items()}, "photo": (io.BytesIO(b"\xff\xd8\xff"), "a.jpg")},
        content_type="multipart/form-data",
        headers=bearer(tokens["operator1"]),
    )
    assert_refused(response, 422, "photo")
    assert incident_count(conn) == before


@pytest.mark.parametrize("name", ["_external", "endpoint", "_scheme", "cursor2"])
def test_query_parameters_a_list_does_not_have_are_422(client, tokens, name):
    for path in ("/api/v1/incidents", "/api/v1/grids"):
        response = client.get(path, query_string={name: "1"}, headers=bearer(tokens["operator1"]))
        assert_refused(response, 422, name)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/actions/rate", {"rating": "²"}, "rating"),
        ("/actions/rate", {"rating": True}, "rating"),
        ("/actions/rate", {"rating": 4.5}, "rating"),
        ("/actions/link_duplicate", {"duplicate_of": "１"}, "duplicate_of"),  # a full-width digit
        ("/actions/accept", {"note": "好\ud800"}, "note"),
        ("/actions/accept", {"notes": "typo"}, "notes"),
    ],
)
def test_bad_action_bodies_name_the_field_and_change_nothing(client, tokens, conn, path, body, field):
    filed = client.post("/api/v1/incidents", json=FILING, headers=bearer(tokens["operator1"])).get_json()
    response = client.post(
        f"/api/v1/incidents/{filed['id']}{path}",
        data=json.dumps(body),
        content_type="application/json",
        headers=bearer(tokens["operator1"]),
    )
    assert_refused(response, 422 if field == "notes" else 400, field)
    status = conn.execute("SELECT status FROM incidents WHERE id = %s", [filed["id"]]).fetchone()
    assert status["status"] == "reported"


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        ("/api/v1/categories/sanitation", "patch", {"time_limit_s": "²"}, "time_limit_s"),
        ("/api/v1/categories/sanitation", "patch", {"active": None}, "active"),
        ("/api/v1/categories/sanitation", "patch", {"time_limt_s": 3600}, "time_limt_s"),
        ("/api/v1/work-calendar", "patch", {"working_hours": None}, "working_hours"),
        ("/api/v1/users/inspector1", "patch", {"active": None}, "active"),
        (
            "/api/v1/users",
            "post",
            {"username": "new_user", "role": "leader", "display_name": ""},
            "display_name",
        ),
    ],
)
def test_admin_inputs_the_document_and_the_validation_agree_on(client, tokens, path, method, body, field):
    """The cases where schemathesis found the hand-written document and the validation apart."""
    response = getattr(client, method)(path, json=body, headers=bearer(tokens["admin1"]))
    assert_refused(response, 422 if field == "time_limt_s" else 400, field)


@pytest.mark.parametrize("params", [{"parent": ""}, {"level": ""}])
def test_an_empty_filter_is_no_filter(client, tokens, params):
    response = client.get("/api/v1/grids", query_string=params, headers=bearer(tokens["operator1"]))
    assert response.status_code == 200 and response.get_json()["numberReturned"] > 0


def test_an_empty_time_filter_is_no_filter(client, tokens):
    response = client.get(
        "/api/v1/incidents", query_string={"reported_before": ""}, headers=bearer(tokens["operator1"])
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("accept_language", "message"),
    [
        (None, "用户名或密码错误"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "用户名或密码错误"),
        ("en-GB,en;q=0.9", "wrong username or password"),
    ],
)
def test_messages_come_in_the_callers_language_only(client, tokens, accept_language, message):
    headers = {"Accept-Language": accept_language} if accept_language else {}
    response = client.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": "wrong"}, headers=headers
    )
    assert response.status_code == 401 and response.get_json()["error"]["message"] == message


def test_validation_messages_come_in_the_callers_language(client, tokens):
    answers = {
        language: client.get(
            "/api/v1/incidents",
            query_string={"limit": "²"},
            headers={**bearer(tokens["operator1"]), "Accept-Language": language},
        ).get_json()["error"]["message"]
        for language in ("zh", "en")
    }
    assert answers["zh"].startswith("limit 无效") and " / " not in answers["zh"]
    assert answers["en"].startswith("limit: ") and "无效" not in answers["en"]
