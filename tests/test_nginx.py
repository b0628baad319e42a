"""nginx in front of a real `gridwatch serve`, configured by `gridwatch deploy nginx` as in
production and run as a real process over HTTPS: the shared tile cache that is never stale nor
shown to the wrong user, the change feed on the same origin, the body limit, gzip, the client's
address, and long-lived fingerprinted assets (deploy/nginx, docs/operations.md)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import requests
from click.testing import CliRunner
from database_support import create_database, drop_database
from server_support import free_port, running_server
from tiles_support import NEAR, tile_path, token_for
from workflow_helpers import OWN_POINT

from server.app import MAX_REQUEST_BYTES
from server.auth.users import set_password
from server.cli import main
from server.errors import body_too_large

# `make test` installs it (scripts/system-packages.sh test): a machine without it fails here.
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PASSWORD = "correct horse"
CLIENT_ADDRESS = "127.0.0.3"  # the test's own loopback address, as a remote client's


class Site:
    """gridwatch behind nginx: its HTTPS base URL, the CA to trust and the database."""

    def __init__(self, base: str, cert: Path, database_url: str, upstream: str) -> None:
        self.base = base
        self.cert = cert
        self.database_url = database_url
        self.upstream = upstream  # gridwatch itself, behind nginx
        self.port = int(base.rsplit(":", 1)[1])

    def client(self) -> requests.Session:
        """A client of its own (cookies), trusting the site's certificate and nothing from the
        environment (REQUESTS_CA_BUNDLE, proxies)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.cert)
        return session

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.client().get(self.base + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.client().post(self.base + path, timeout=30, **kwargs)

    def connection(self, **kwargs) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=self.cert)
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=5, **kwargs)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def port_with_free_next() -> int:
    """A free port whose successor is free too: `gridwatch serve` puts the feed there, and
    `gridwatch deploy nginx` looks for it there."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def wait_until_listening(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, f"{what} ended: {process.stderr.read().decode()}"
            assert time.monotonic() < deadline, f"{what} did not listen within 15 s"
            time.sleep(0.1)


@contextmanager
def running_nginx(upstream_port: int) -> Iterator[tuple[str, Path]]:
    """nginx as production configures it, in a throw-away directory; yields the base URL and
    the self-signed certificate it made."""
    # World-readable: as root, nginx's workers run as nobody and must reach the tile cache.
    directory = Path(tempfile.mkdtemp(prefix="gridwatch-nginx-"))
    directory.chmod(0o755)
    port = free_port()
    rendered = CliRunner().invoke(
        main,
        [
            "deploy", "nginx", "--upstream", f"127.0.0.1:{upstream_port}", "--listen", f"127.0.0.1:{port}",
            "--out", str(directory), "--foreground",
        ],
    )  # fmt: skip
    assert rendered.exit_code == 0, rendered.output
    nginx = subprocess.Popen(
        [NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")], stderr=subprocess.PIPE
    )
    try:
        wait_until_listening(port, nginx, "nginx")
        yield f"https://127.0.0.1:{port}", directory / "tls" / "gridwatch.crt"
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        nginx.stderr.close()
        shutil.rmtree(directory)


@pytest.fixture(scope="module")
def site(pg_cluster, template_url, tmp_path_factory) -> Iterator[Site]:
    name = f"gridwatch_nginx_module_{os.getpid()}"  # per pytest-xdist worker
    template = psycopg.conninfo.conninfo_to_dict(template_url)["dbname"]
    url = create_database(pg_cluster, name, template=template)
    with psycopg.connect(url) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE username = 'operator1'").fetchone()[0]
        set_password(conn, user_id=user_id, password=PASSWORD)
    port = port_with_free_next()
    gridwatch = str(Path(sys.executable).with_name("gridwatch"))
    env = {
        "GRIDWATCH_SECRET_KEY": "test-secret",
        "GRIDWATCH_TRUSTED_PROXIES": "1",
        "GRIDWATCH_EVENTS_URL": "/api/v1/events",
    }
    try:
        with running_server(
            lambda port: [gridwatch, "serve", "--port", str(port), "--workers", "1"],
            database_url=url,
            var_dir=tmp_path_factory.mktemp("var"),
            port=port,
            env=env,
        ) as upstream:
            feed_up = time.monotonic() + 30  # as running_server waits for the API
            while True:  # the feed answers /health once it listens to the database
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port + 1}/health", timeout=2):
                        break
                except OSError:
                    assert time.monotonic() < feed_up, "the change feed did not start"
                    time.sleep(0.1)
            with running_nginx(port) as (base, cert):
                yield Site(base, cert, url, upstream)
    finally:
        drop_database(pg_cluster, name)


def log_in(site: Site, username: str) -> requests.Session:
    session = site.client()
    answer = session.post(site.base + "/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return session


def test_a_tile_is_stored_once_but_gridwatch_is_asked_every_time(site):
    path = tile_path("incidents", NEAR, 16)
    token = bearer(token_for(site.database_url, "operator1"))

    first = site.get(path, headers=token)
    assert first.status_code == 200 and first.headers["X-Cache-Status"] == "MISS"
    etag = first.headers["ETag"]
    assert re.fullmatch(r'(W/)?"[0-9a-f]{32}"', etag)
    assert "X-Accel-Expires" not in first.headers

    unchanged = site.get(path, headers={**token, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.headers["X-Cache-Status"] == "REVALIDATED"

    # A login session, not the token that filled the cache: gridwatch said 304 to its
    # credentials, and nginx sent its stored copy.
    other_session = log_in(site, "operator1").get(site.base + path)
    assert other_session.status_code == 200
    assert other_session.headers["X-Cache-Status"] == "REVALIDATED"
    assert other_session.content == first.content and other_session.headers["ETag"] == etag
    assert "Set-Cookie" not in other_session.headers  # a shared answer carries nobody's cookie

    anonymous = site.get(path)
    assert anonymous.status_code == 401 and anonymous.content != first.content
    assert anonymous.json()["error"]["code"] == "unauthorized"


def test_a_user_without_rights_to_a_layer_never_gets_the_stored_tile(site):
    path = tile_path("coverage", NEAR, 14)
    leader = bearer(token_for(site.database_url, "leader1"))
    stored = site.get(path, headers=leader)
    assert stored.status_code == 200 and stored.headers["X-Cache-Status"] == "MISS"

    department = site.get(path, headers=bearer(token_for(site.database_url, "handler1")))
    assert department.status_code == 403
    assert department.json()["error"]["code"] == "forbidden"
    revoked = site.get(path, headers=bearer("gw_revoked-or-forged"))
    assert revoked.status_code == 401

    again = site.get(path, headers=leader)
    assert again.headers["X-Cache-Status"] == "REVALIDATED" and again.content == stored.content


def read_event(stream: http.client.HTTPResponse, incident_id: int, deadline: float) -> dict:
    """The stream's event about ``incident_id`` (others are skipped)."""
    data = None
    while time.monotonic() < deadline:
        line = stream.readline().decode()
        if line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "\n" and data is not None:
            if data.get("incident_id") == incident_id:
                return data
            data = None
    raise TimeoutError(f"no event about incident {incident_id} in time")


def test_a_filing_reaches_the_feed_and_changes_its_tile_within_2_s(site):
    operator = bearer(token_for(site.database_url, "operator1"))
    path = tile_path("incidents", OWN_POINT, 16)
    before = site.get(path, headers=operator)
    assert before.status_code in (200, 204)

    feed = site.connection()
    feed.request("GET", "/api/v1/events", headers={**operator, "Accept": "text/event-stream"})
    stream = feed.getresponse()
    assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
    filing = {
        "lon": OWN_POINT[0],
        "lat": OWN_POINT[1],
        "category": "sanitation",
        "description": "经 nginx 上报",
    }
    filed = site.post(
        "/api/v1/incidents", json=filing, headers=bearer(token_for(site.database_url, "inspector1"))
    )
    filed_at = time.monotonic()
    assert filed.status_code == 201, filed.text
    incident_id = filed.json()["id"]
    try:
        event = read_event(stream, incident_id, deadline=filed_at + 2)
    finally:
        feed.close()
    assert event["kind"] == "created"

    while True:
        after = site.get(path, headers={**operator, "If-None-Match": before.headers["ETag"]})
        if after.status_code == 200 and after.content != before.content:
            break
        assert time.monotonic() - filed_at < 2, "the tile through nginx did not change within 2 s"
        time.sleep(0.05)
    assert after.headers["ETag"] != before.headers["ETag"]


def test_a_body_over_the_limit_gets_gridwatch_s_own_json_error(site):
    token = bearer(token_for(site.database_url, "inspector1"))
    answer = site.post(
        "/api/v1/incidents",
        data=b"x" * (30 * 1024 * 1024),
        headers={**token, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == body_too_large(MAX_REQUEST_BYTES).to_dict("en")
    assert answer.json()["error"]["field"] == "body"


def test_json_geojson_and_tiles_come_gzipped(site):
    operator = bearer(token_for(site.database_url, "operator1"))
    gzip = {"Accept-Encoding": "gzip"}
    for path, media_type in [
        ("/tiles/index.json", "application/json"),
        ("/api/v1/incidents", "application/geo+json"),
        (tile_path("grids", NEAR, 11), "application/vnd.mapbox-vector-tile"),
    ]:
        answer = site.get(path, headers={**operator, **gzip})
        assert answer.status_code == 200, path
        assert answer.headers["Content-Type"].startswith(media_type), path
        assert answer.headers["Content-Encoding"] == "gzip", path
    # nginx compressed the tile: its ETag is weak now, and still answers If-None-Match.
    etag = answer.headers["ETag"]
    assert etag.startswith('W/"')
    revalidated = site.get(tile_path("grids", NEAR, 11), headers={**operator, **gzip, "If-None-Match": etag})
    assert revalidated.status_code == 304
    # gridwatch itself compares weakly too (RFC 9110), as it must behind an nginx without the cache.
    direct = requests.get(
        site.upstream + tile_path("grids", NEAR, 11), headers={**operator, "If-None-Match": etag}
    )
    assert direct.status_code == 304
    identity = site.get(tile_path("grids", NEAR, 11), headers={**operator, "Accept-Encoding": "identity"})
    assert "Content-Encoding" not in identity.headers and identity.content == answer.content


def test_gridwatch_sees_the_client_s_address_not_a_forged_one(site):
    connection = site.connection(source_address=(CLIENT_ADDRESS, 0))
    body = json.dumps({"username": "operator1", "password": PASSWORD})
    # A client's own X-Forwarded-For is not believed: nginx appends the address it saw.
    forged = {"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.9"}
    connection.request("POST", "/api/v1/auth/login", body=body, headers=forged)
    answer = connection.getresponse()
    assert answer.status == 200, answer.read()
    connection.close()
    with psycopg.connect(site.database_url) as conn:
        (address,) = conn.execute(
            "SELECT remote_addr FROM login_sessions ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert address == CLIENT_ADDRESS


def test_only_fingerprinted_assets_are_cached_for_a_year(site):
    page = site.get("/dashboard/")
    assert page.status_code == 200
    bundle = re.search(r'src="(/dashboard/_dash-component-suites/[^"]+\.v[\w-]+m\d+\.[^"]+)"', page.text)
    asset = re.search(r'"(/dashboard/assets/[^"?]+\?m=[\d.]+)"', page.text)
    assert bundle and asset, "the dashboard page links no fingerprinted files"
    forever = "public, max-age=31536000, immutable"
    for url in (bundle[1], asset[1]):
        answer = site.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["Cache-Control"] == forever, url
    unversioned = site.get(asset[1].split("?")[0])
    assert unversioned.status_code == 200
    assert unversioned.headers.get("Cache-Control") != forever
