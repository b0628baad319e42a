"""A bounded schemathesis run against /api/v1/openapi.json: generated requests (valid and
invalid) never get a 5xx, and every response matches the documented status codes, media types
and schemas.

The operations are driven with hypothesis directly (schemathesis' pytest plugin does not run
under this pytest); the examples per operation and mode are bounded so the run stays short.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 8  # per operation, role and mode: 37 operations x 6 callers x 2 modes
# Every role, and nobody. The deactivation of users and the revocation of tokens run last (they
# may end the very token a later call would use); a 401 is documented, so nothing fails then.
CALLERS = ("inspector1", "operator1", "handler1", "leader1", "admin1", None)
LAST = ("/users/{username}", "/auth/tokens/{token_id}", "/auth/logout")


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

    try:
        run()
    except Unsatisfiable:
        # An operation with nothing to get wrong (logout: no parameters, no body) has no negative case.
        assert mode == GenerationMode.NEGATIVE, operation.path


def test_the_api_matches_its_openapi_document_for_every_role(app, tokens):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=lambda o: o.path in LAST)
    assert len(operations) >= 30
    for operation in operations:
        for caller in CALLERS:
            headers = {"Authorization": f"Bearer {tokens[caller]}"} if caller else {}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                exercise(operation, mode, headers)


def test_the_document_and_docs_page_are_served(client):
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200 and document.get_json()["openapi"].startswith("3.")
    assert "/incidents/{incident_id}/actions/{action}" in document.get_json()["paths"]
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and b"openapi.json" in page.data and b"<script src=" not in page.data
