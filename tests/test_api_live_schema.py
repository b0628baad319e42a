"""schemathesis' own command line against a real `gridwatch serve`, with every role's token and
with none: its default checks (server errors, status codes, media types, response schemas and
headers, undeclared methods, schema-valid input accepted and invalid input refused) find nothing,
and it prints no warning. The project's `schemathesis.toml` says what it tunes and why."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from server_support import free_port, running_server
from workflow_helpers import OWN_POINT

ROOT = Path(__file__).resolve().parent.parent


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


CALLERS = ("inspector1", "operator1", "handler1", "leader1", "admin1", None)


def a_case_everyone_sees(client, token: str) -> tuple[int, int]:
    """An incident with a photo, in inspector1's grid and dispatched to handler1's department,
    so that the operations on one incident find it whoever calls (not 404 after 404)."""
    image = io.BytesIO()
    Image.new("RGB", (32, 24), (30, 120, 200)).save(image, "JPEG")
    headers = {"Authorization": f"Bearer {token}"}
    filed = client.post(
        "/api/v1/incidents",
        data={
            "lon": str(OWN_POINT[0]),
            "lat": str(OWN_POINT[1]),
            "category": "sanitation",
            "photos": (io.BytesIO(image.getvalue()), "a.jpg"),
        },  # fmt: skip
        content_type="multipart/form-data",
        headers=headers,
    ).get_json()
    client.post(f"/api/v1/incidents/{filed['id']}/actions/accept", headers=headers)
    client.post(
        f"/api/v1/incidents/{filed['id']}/actions/dispatch", json={"department": "emergency"}, headers=headers
    )
    return filed["id"], filed["properties"]["photos"][0]["id"]


@pytest.mark.parametrize("caller", CALLERS)
def test_schemathesis_finds_nothing_and_warns_of_nothing(client, tokens, database_url, tmp_path, caller):
    incident_id, photo_id = a_case_everyone_sees(client, tokens["operator1"])
    # A token of the caller's own to revoke, and a user nobody needs to deactivate.
    spare_token = 1
    if caller:
        created = client.post("/api/v1/auth/tokens", json={"label": "spare"}, headers=bearer(tokens[caller]))
        spare_token = client.get("/api/v1/auth/tokens", headers=bearer(tokens[caller])).get_json()["tokens"][
            -1
        ]["id"]
        assert created.status_code == 201
    client.post(
        "/api/v1/users", json={"username": "st_target", "role": "leader"}, headers=bearer(tokens["admin1"])
    )
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        (ROOT / "schemathesis.toml").read_text()
        + f"""
[[operations]]
include-path-regex = "^/incidents/[{{]incident_id[}}]"
parameters = {{ incident_id = {incident_id}, photo_id = {photo_id} }}

[[operations]]
include-path = "/auth/tokens/{{token_id}}"
parameters = {{ token_id = {spare_token} }}

[[operations]]
include-path = "/users/{{username}}"
parameters = {{ username = "st_target" }}
"""
    )

    def command(port: int) -> list[str]:
        gridwatch = str(Path(sys.executable).with_name("gridwatch"))
        return [gridwatch, "serve", "--port", str(port), "--workers", "1", "--events-port", str(free_port())]

    # The operations that may end the caller's own token or account (revoking a token by id,
    # deactivating a user) run last, on their own: before, they would turn the rest into 401s.
    ends_access = r"^/(auth/tokens/|users/\{username\})"
    with running_server(command, database_url=database_url, var_dir=tmp_path) as base:
        for selection in (["--exclude-path-regex", ends_access], ["--include-path-regex", ends_access]):
            auth = ["-H", f"Authorization: Bearer {tokens[caller]}"] if caller else []
            run = subprocess.run(
                [
                    str(Path(sys.executable).with_name("st")),
                    "--config-file",
                    str(config),
                    "run",
                    f"{base}/api/v1/openapi.json",
                    *auth,
                    "--max-examples",
                    "5",
                    "--seed",
                    "2184",
                    *selection,
                    "--phases",
                    "examples,coverage,fuzzing",
                    "--no-color",
                ],  # fmt: skip
                capture_output=True,
                text=True,
                timeout=600,
                cwd=tmp_path,
            )
            summary = run.stdout[run.stdout.rfind("SUMMARY") :]
            report = "\n".join(line[:300] for line in run.stdout.splitlines())  # generated URLs run long
            assert run.returncode == 0 and "Warnings" not in summary, report[-12000:]
