"""The change feed as a real process for tests (``gridwatch serve --only feed``), and a reader
of its Server-Sent Events over plain sockets."""

from __future__ import annotations

import http.client
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from server_support import running_server

from server.tiles.changes import fold_pending


@contextmanager
def feed_server(database_url: str, var_dir: Path, port: int | None = None, **settings: str) -> Iterator[str]:
    """The feed (``gridwatch serve --only feed``) on ``port`` (default a free one), with
    ``GRIDWATCH_<NAME>`` settings; yields its base URL once it listens to the database."""
    env = {"GRIDWATCH_SECRET_KEY": "test-secret"} | {
        f"GRIDWATCH_{name.upper()}": value for name, value in settings.items()
    }
    with running_server(
        lambda port: [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--only",
            "feed",
            "--events-port",
            str(port),
        ],
        database_url=database_url,
        var_dir=var_dir,
        port=port,
        env=env,
    ) as base:
        yield base


def fold(database_url: str) -> None:
    """Fold queued rollup changes into the change log, as a server's tile listener does every
    250 ms (the feed only announces what was folded)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        fold_pending(conn)


class EventStream:
    """One open stream, read event by event."""

    def __init__(
        self, base: str, headers: dict[str, str], *, timeout: float = 5.0, path: str = "/api/v1/events"
    ):
        self.connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=timeout)
        self.connection.request("GET", path, headers=headers)
        self.response = self.connection.getresponse()
        self.status = self.response.status

    def json(self) -> dict:
        return json.loads(self.response.read())

    def next_event(self, within: float = 5.0) -> dict | None:
        """The next event's data, or None when the server ended the stream. Raises TimeoutError
        when no event comes within ``within`` seconds (heartbeats do not count)."""
        data = None
        deadline = time.monotonic() + within
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no event within {within} s")
            line = self.response.readline().decode()
            if line == "":
                return None
            if line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "\n" and data is not None:
                return data

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
