"""The change feed's own server (server/feed) as a real process: what a stream carries, resuming,
its limits, the end of a stream whose credentials end, and each viewer's scope."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from feed_support import EventStream, feed_server, fold
from server_support import free_port, running_server
from tiles_support import FAR, NEAR, bearer, file_incident, last_event_id, tile_of, token_for

from server.auth.users import set_password
from server.feed.hub import encode, events_past
from server.tiles.geo import density_tiles, expand_tile_rows


@pytest.fixture
def feed(database_url, tmp_path):
    with feed_server(database_url, tmp_path, feed_heartbeat_s="0.5") as base:
        yield base


def test_a_new_incident_reaches_an_operator_stream(feed, database_url):
    with EventStream(feed, bearer(token_for(database_url, "operator1"))) as stream:
        assert stream.status == 200
        assert stream.response.headers["Content-Type"].startswith("text/event-stream")
        assert stream.response.headers["X-Accel-Buffering"] == "no"
        assert stream.response.readline() == b"retry: 2000\n"
        incident_id = file_incident(database_url, NEAR)
        fold(database_url)
        event = stream.next_event()
    assert event["kind"] == "created" and event["incident_id"] == incident_id
    z, x, y = tile_of(NEAR, 16)
    assert f"{z}/{x}/{y}" in event["tiles"]
    density = expand_tile_rows(event["density_tiles"])
    assert f"{z}/{x}/{y}" in density
    assert {tile.split("/")[0] for tile in density} == {str(z) for z in range(5, 19)}
    # Every tile the hexagon crosses, at every zoom, in rows: about 50 entries, not 477 tiles.
    assert density == {
        f"{zoom}/{tx}/{ty}"
        for zoom in range(5, 19)
        for tx, ty in density_tiles(*NEAR, zoom, filtered=False) | density_tiles(*NEAR, zoom, filtered=True)
    }
    assert len(event["density_tiles"]) < len(density) / 3


def test_a_stream_resumes_after_last_event_id(feed, database_url):
    token = token_for(database_url, "operator1")
    resume_from = last_event_id(database_url)
    first = file_incident(database_url, NEAR)
    second = file_incident(database_url, FAR)
    fold(database_url)
    with EventStream(feed, {**bearer(token), "Last-Event-ID": str(resume_from)}) as stream:
        received = [stream.next_event()["incident_id"], stream.next_event()["incident_id"]]
        third = file_incident(database_url, NEAR)
        fold(database_url)
        received.append(stream.next_event()["incident_id"])
    assert received == [first, second, third]


def test_a_stream_that_missed_nothing_gets_only_what_comes_next(feed, database_url):
    token = token_for(database_url, "operator1")
    file_incident(database_url, NEAR)
    resume_from = last_event_id(database_url)
    with EventStream(feed, {**bearer(token), "Last-Event-ID": str(resume_from)}) as stream:
        newer = file_incident(database_url, FAR)
        fold(database_url)
        assert stream.next_event()["incident_id"] == newer


def test_a_live_batch_that_overlaps_the_backlog_is_cut_to_the_new_events():
    # One batch window may hold the notifications of changes a resuming stream already got from
    # the backlog (through id 11) and of a newer one: only the newer is written.
    documents = [{"id": n, "kind": "created", "note": "第一行\n第二行\n\n"} for n in (10, 11, 12)]
    chunk = b"".join(encode(document) for document in documents)
    assert events_past(chunk, 11) == encode(documents[2])
    assert events_past(chunk, 9) == chunk
    assert events_past(chunk, 12) == b""


def test_heartbeats_keep_an_idle_stream_open(feed, database_url):
    with EventStream(feed, bearer(token_for(database_url, "operator1")), timeout=3) as stream:
        stream.response.readline()  # retry
        stream.response.readline()
        assert stream.response.readline() == b": keep-alive\n"


def test_bad_requests_get_a_json_error_naming_the_field(feed, database_url):
    with EventStream(feed, {}) as anonymous:
        assert anonymous.status == 401
        assert anonymous.json()["error"]["field"] == "Authorization"
    with EventStream(feed, bearer("gw_not-a-token")) as forged:
        assert forged.status == 401
    operator = bearer(token_for(database_url, "operator1"))
    for headers, path, field in (
        ({"Last-Event-ID": "abc"}, "/api/v1/events", "Last-Event-ID"),
        ({"Last-Event-ID": "²"}, "/api/v1/events", "Last-Event-ID"),
        ({}, "/api/v1/events?since=3", "since"),
    ):
        with EventStream(feed, {**operator, **headers}, path=path) as stream:
            assert stream.status == 400
            assert stream.json()["error"]["field"] == field


def test_the_api_server_says_where_the_feed_is(client):
    response = client.get("/api/v1/events?last_event_id=7", headers={"Host": "gridwatch.local:8000"})
    assert response.status_code == 307
    assert response.headers["Location"] == "http://gridwatch.local:8001/api/v1/events?last_event_id=7"


def test_a_user_gets_at_most_the_cap_of_streams(database_url, tmp_path):
    token = token_for(database_url, "operator1")
    with feed_server(database_url, tmp_path, feed_streams_per_user="3") as feed:
        streams = [EventStream(feed, bearer(token)) for _ in range(3)]
        assert [stream.status for stream in streams] == [200, 200, 200]
        with EventStream(feed, bearer(token)) as fourth:
            assert fourth.status == 429
            error = fourth.json()["error"]
        assert error["code"] == "too_many_requests" and error["limit"] == 3
        # Another user is not counted against the first one's cap.
        with EventStream(feed, bearer(token_for(database_url, "leader1"))) as other:
            assert other.status == 200
        streams.pop().close()
        time.sleep(0.3)  # the server notices the closed socket
        with EventStream(feed, bearer(token)) as again:
            assert again.status == 200
        for stream in streams:
            stream.close()


def test_a_revoked_tokens_stream_ends(feed, database_url):
    token = token_for(database_url, "operator1")
    with EventStream(feed, bearer(token), timeout=5) as stream:
        assert stream.status == 200
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE label = 'tile tests'")
        started = time.monotonic()
        while (event := stream.next_event()) is not None:
            pass
        assert event is None and time.monotonic() - started < 2
    with EventStream(feed, bearer(token)) as again:
        assert again.status == 401


def test_a_deactivated_users_stream_ends(feed, database_url):
    with EventStream(feed, bearer(token_for(database_url, "handler1")), timeout=5) as stream:
        assert stream.status == 200
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE users SET active = false WHERE username = 'handler1'")
        while stream.next_event() is not None:
            pass


def test_a_session_stream_ends_with_its_session(app, database_url, tmp_path):
    """A browser's stream: the login cookie, read from another origin (the workers' port) by
    CORS, and ended when the session's lifetime is over."""
    with psycopg.connect(database_url) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE username = 'operator1'").fetchone()[0]
        set_password(conn, user_id=user_id, password="correct horse")
    client = app.test_client()
    response = client.post("/api/v1/auth/login", json={"username": "operator1", "password": "correct horse"})
    assert response.status_code == 200
    cookie = client.get_cookie("session").value
    # 0.001 h = 3.6 s
    with feed_server(database_url, tmp_path, session_hours="0.001", feed_heartbeat_s="0.5") as feed:
        headers = {"Cookie": f"session={cookie}", "Origin": "http://127.0.0.1:8000"}
        with EventStream(feed, headers, timeout=10) as stream:
            assert stream.status == 200
            assert stream.response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
            assert stream.response.headers["Access-Control-Allow-Credentials"] == "true"
            started = time.monotonic()
            while stream.next_event() is not None:
                pass
            assert time.monotonic() - started < 6
        time.sleep(0.5)
        with EventStream(feed, headers) as expired:
            assert expired.status == 401
        with EventStream(feed, {**headers, "Origin": "http://elsewhere.example"}) as foreign:
            assert "Access-Control-Allow-Origin" not in foreign.response.headers


def test_a_logout_ends_the_sessions_streams_at_once(app, database_url, tmp_path):
    """Every stream opened with a copy of the cookie ends when the session logs out."""
    with psycopg.connect(database_url) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE username = 'operator1'").fetchone()[0]
        set_password(conn, user_id=user_id, password="correct horse")
    client = app.test_client()
    login = client.post("/api/v1/auth/login", json={"username": "operator1", "password": "correct horse"})
    headers = {"Cookie": f"session={client.get_cookie('session').value}"}
    with feed_server(database_url, tmp_path, feed_heartbeat_s="30") as feed:
        with (
            EventStream(feed, headers, timeout=10) as first,
            EventStream(feed, headers, timeout=10) as second,
        ):
            assert first.status == second.status == 200
            logout = client.post(
                "/api/v1/auth/logout", headers={"X-CSRF-Token": login.get_json()["csrf_token"]}
            )
            assert logout.status_code == 204
            started = time.monotonic()
            for stream in (first, second):
                while stream.next_event() is not None:
                    pass
            assert time.monotonic() - started < 3  # the notification, not the 30 s heartbeat
        with EventStream(feed, headers) as after:
            assert after.status == 401


def test_an_inspectors_stream_holds_nothing_of_another_grid(feed, database_url):
    with EventStream(feed, bearer(token_for(database_url, "inspector1")), timeout=3) as stream:
        far = file_incident(database_url, FAR)
        fold(database_url)
        near = file_incident(database_url, NEAR)
        fold(database_url)
        event = stream.next_event()
        assert event["incident_id"] == near  # FAR's event was never sent
        with pytest.raises(TimeoutError):
            stream.next_event(within=1.5)
    assert far != near


def test_a_department_handlers_stream_holds_only_its_cases(feed, database_url):
    with psycopg.connect(database_url) as conn:
        departments = dict(conn.execute("SELECT code, id FROM departments").fetchall())
    other = next(code for code in departments if code != "emergency")
    with EventStream(feed, bearer(token_for(database_url, "handler1")), timeout=3) as stream:
        theirs = file_incident(database_url, FAR)
        ours = file_incident(database_url, FAR)
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "UPDATE incidents SET department_id = %s WHERE id = %s", [departments[other], theirs]
            )
            conn.execute(
                "UPDATE incidents SET department_id = %s WHERE id = %s", [departments["emergency"], ours]
            )
        fold(database_url)
        received = set()
        with pytest.raises(TimeoutError):
            while True:
                received.add(stream.next_event(within=1.5)["incident_id"])
    assert received == {ours}


def test_sixty_four_streams_and_the_api_still_answers(database_url, tmp_path):
    """Browser tabs and phones holding the feed open cost the API nothing: 64 streams (four
    times the workers' threads) and a filing answers as fast as without them."""
    # A wall screen, operators' tabs and phones: 16 streams each of four users (the cap is per user).
    tokens = [token_for(database_url, name) for name in ("operator1", "leader1", "admin1", "inspector1")]
    token = tokens[0]
    gridwatch = str(Path(sys.executable).with_name("gridwatch"))
    with running_server(
        lambda port: [gridwatch, "serve", "--port", str(port), "--events-port", str(free_port())],
        database_url=database_url,
        var_dir=tmp_path,
    ) as base:
        # Found through the API's address, as a client without configuration would.
        request = urllib.request.Request(base + "/api/v1/events", headers=bearer(token), method="HEAD")
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            opener.open(request, timeout=5)
            raise AssertionError("expected a redirect")
        except urllib.error.HTTPError as redirect:
            feed = redirect.headers["Location"].removesuffix("/api/v1/events")
        streams = [EventStream(feed, bearer(tokens[n % 4]), timeout=10) for n in range(64)]
        try:
            assert {stream.status for stream in streams} == {200}
            timings = []
            for _ in range(5):
                started = time.monotonic()
                with urllib.request.urlopen(base + "/health", timeout=10) as health:
                    assert health.status == 200
                timings.append(time.monotonic() - started)
            body = b'{"lon": %f, "lat": %f, "category": "sanitation"}' % NEAR
            filing = urllib.request.Request(
                base + "/api/v1/incidents",
                data=body,
                headers={**bearer(token), "Content-Type": "application/json"},
                method="POST",
            )
            started = time.monotonic()
            with urllib.request.urlopen(filing, timeout=10) as response:
                assert response.status == 201
                incident_id = json.loads(response.read())["id"]
            timings.append(time.monotonic() - started)
            assert max(timings) < 2.0, timings
            # ... and every stream hears of it.
            for stream in streams:
                event = stream.next_event()
                while event["incident_id"] != incident_id:
                    event = stream.next_event()
        finally:
            for stream in streams:
                stream.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_events_are_encoded_once_as_server_sent_events():
    assert encode({"id": 5, "kind": "created", "note": "秸秆"}) == (
        'id: 5\nevent: incident\ndata: {"id":5,"kind":"created","note":"秸秆"}\n\n'.encode()
    )


def test_an_inspector_given_another_grid_hears_of_it_at_once(feed, database_url):
    with EventStream(feed, bearer(token_for(database_url, "inspector1")), timeout=3) as stream:
        with psycopg.connect(database_url) as conn:
            conn.execute(
                """UPDATE grids SET member_id = (SELECT id FROM users WHERE username = 'inspector1')
                    WHERE id = grid_at(ST_SetSRID(ST_MakePoint(%s, %s), 4326))""",
                FAR,
            )
        time.sleep(0.5)  # the feed re-reads the inspector's grids on the grids notification
        far = file_incident(database_url, FAR)
        fold(database_url)
        assert stream.next_event()["incident_id"] == far


def run_in_own_loop(coroutine_function):
    """asyncio.run in a thread of its own: the browser tests' Playwright keeps an event loop
    running in the main thread for the whole session."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_function())).result()


def test_a_client_that_falls_behind_is_dropped_not_buffered_for_ever():
    from server.auth.scope import SEES_ALL
    from server.auth.users import User
    from server.feed.hub import LAG_LIMIT_BYTES, PIECE_BYTES, Hub, Stream

    rows = [{"id": n, "kind": "created", "incident_id": n, "grid_ids": [1]} for n in range(1, 801)]
    documents = [{"id": n, "at": "", "kind": "created", "note": "x" * 1000} for n in range(1, 801)]

    async def publish_twice() -> tuple[Stream, Stream, list]:
        hub = Hub(per_user=10, total=10)
        reader, sleeper = (Stream(user=User(n, "u", "u", "operator", None), scope=SEES_ALL) for n in (1, 2))
        hub.open(reader)
        hub.open(sleeper)
        # A burst of 800 KB reaches both: neither was behind before it.
        hub.publish(rows, documents, {})
        written = []
        while not reader.queue.empty():
            written.append(await reader.next_chunk())
        hub.publish(rows[:1], documents[:1], {})  # the one that never read is dropped now
        return reader, sleeper, written

    reader, sleeper, written = run_in_own_loop(publish_twice)
    assert LAG_LIMIT_BYTES < 800 * 1000
    assert not reader.closed and sleeper.closed
    assert sleeper.queue.get_nowait() is None  # its writer stops at once
    assert all(len(piece) <= PIECE_BYTES for _, piece in written)
    assert [last_id for last_id, _ in written][-1] == 800
