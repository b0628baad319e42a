"""A bounded schemathesis run against /api/v1/openapi.json: generated requests (valid and
invalid) never get a 5xx, and every response matches the documented status codes, media types
and schemas.

The operations are driven with hypothesis directly (schemathesis' pytest plugin does not run
under this pytest); the examples per operation and mode are bounded so the run stays short.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 20


def exercise(operation, mode: GenerationMode, headers: dict) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def test_the_api_matches_its_openapi_document(app, tokens):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16
    for operation in operations:
        # Administration as the admin (so its success responses are checked too); token revocation as
        # a user nobody else needs (it may revoke the very token it runs with); the rest as an operator.
        caller = "operator1"
        if operation.path.startswith(("/users", "/categories")):
            caller = "admin1"
        elif operation.path.startswith("/auth/tokens/"):
            caller = "leader1"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            exercise(operation, mode, {"Authorization": f"Bearer {tokens[caller]}"})


def test_the_document_and_docs_page_are_served(client):
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200 and document.get_json()["openapi"].startswith("3.")
    assert "/incidents/{incident_id}/actions/{action}" in document.get_json()["paths"]
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and b"openapi.json" in page.data and b"<script src=" not in page.data
