"""The files of ``/report`` and the service worker's shell list agree, so the page opens offline."""

from __future__ import annotations

import re
from pathlib import Path

import server.report

STATIC = Path(server.report.__file__).with_name("static")


def shell_paths() -> list[str]:
    source = (STATIC / "sw.js").read_text()
    listed = re.search(r"const SHELL = \[(.*?)\];", source, re.S)
    assert listed is not None
    return re.findall(r'"([^"]+)"', listed.group(1))


def test_every_file_of_the_page_is_in_the_shell_and_served(client):
    shell = shell_paths()
    page_files = {f"/report/static/{path.name}" for path in STATIC.iterdir() if path.name != "sw.js"}
    assert page_files <= set(shell)
    for path in shell:
        with client.get(path) as response:  # closed: send_file responses hold the file open
            assert response.status_code == 200, path


def test_the_service_worker_may_control_the_page_one_level_up(client):
    with client.get("/report/sw.js") as response:
        assert response.status_code == 200
        assert response.mimetype == "text/javascript"
        assert response.headers["Service-Worker-Allowed"] == "/report"
        assert response.headers["Cache-Control"] == "no-cache"
