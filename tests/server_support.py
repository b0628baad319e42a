"""gridwatch as a real server process for tests: `gridwatch serve`, or gunicorn with chosen
workers, on a free port against a test database, stopped when the test ends."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from database_support import server_url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(
    command: Callable[[int], list[str]],
    *,
    database_url: str,
    var_dir: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
    output: Path | None = None,
) -> Iterator[str]:
    """Start ``command(port)`` (``port`` default a free one) with ``env`` added to the
    environment, wait until ``/health`` answers 200, yield the base URL. Its standard output
    (gunicorn's access log) goes to ``output`` when given."""
    port = port or free_port()
    env = (
        os.environ
        | {
            # The server connects as the server's role, the command line as the owner.
            "GRIDWATCH_DATABASE_URL": server_url(database_url),
            "GRIDWATCH_OWNER_DATABASE_URL": database_url,
            "GRIDWATCH_VAR_DIR": str(var_dir),
        }
        | (env or {})
    )
    stdout = output.open("wb") if output else subprocess.DEVNULL
    server = subprocess.Popen(command(port), env=env, stdout=stdout, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "the server did not answer within 30 s"
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stderr.close()
        if output:
            stdout.close()
