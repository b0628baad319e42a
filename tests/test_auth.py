"""Passwords, API tokens, login sessions with CSRF, failed-login limits, CLI users and demo accounts."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
from click.testing import CliRunner

from server.app import create_app
from server.auth.demo import create_demo_accounts
from server.auth.passwords import hash_password, verify_password
from server.auth.ratelimit import PER_USERNAME_AND_ADDRESS
from server.auth.users import set_password
from server.cli import main
from server.clock import CLOCK_KEY
from server.settings import Settings


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def give_password(conn, username: str, password: str) -> None:
    user_id = conn.execute("SELECT id FROM users WHERE username = %s", [username]).fetchone()["id"]
    set_password(conn, user_id=user_id, password=password)
    conn.commit()


def test_passwords_are_salted_scrypt_hashes():
    first, second = hash_password("洪雅 grid 2184"), hash_password("洪雅 grid 2184")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("洪雅 grid 2184", first)
    assert not verify_password("洪雅 grid 2185", first)
    assert not verify_password("anything", None)
    assert not verify_password("anything", "md5$abc")


def test_a_bearer_token_identifies_its_user_and_is_stored_hashed(client, conn, tokens):
    response = client.get("/api/v1/users/me", headers=bearer(tokens["inspector1"]))
    assert response.status_code == 200
    me = response.get_json()
    assert me["username"] == "inspector1" and me["role"] == "inspector"
    assert me["grids"] == ["511423001001001", "511423001001002"]
    stored = conn.execute("SELECT token_sha256 FROM api_tokens").fetchall()
    digest = hashlib.sha256(tokens["inspector1"].encode()).digest()
    assert digest in {bytes(row["token_sha256"]) for row in stored}
    assert all(tokens["inspector1"].encode() not in bytes(row["token_sha256"]) for row in stored)


def test_missing_malformed_and_revoked_tokens_are_401(client, conn, tokens):
    assert client.get("/api/v1/users/me").status_code == 401
    for header in ("Bearer nope", "Basic abc", "Bearer ", "Bearer " + "x" * 500):
        response = client.get("/api/v1/users/me", headers={"Authorization": header})
        assert response.status_code == 401
        assert response.get_json()["error"]["field"] == "Authorization"
    conn.execute("UPDATE api_tokens SET revoked_at = now()")
    conn.commit()
    assert client.get("/api/v1/users/me", headers=bearer(tokens["operator1"])).status_code == 401


def test_login_session_needs_csrf_proof_for_changes(client, conn):
    give_password(conn, "operator1", "correct horse")
    response = client.post("/api/v1/auth/login", json={"username": "operator1", "password": "correct horse"})
    assert response.status_code == 200
    csrf = response.get_json()["csrf_token"]
    assert client.get("/api/v1/users/me").get_json()["username"] == "operator1"

    refused = client.post("/api/v1/auth/tokens", json={"label": "phone"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["field"] == "X-CSRF-Token"
    wrong = client.post("/api/v1/auth/tokens", json={}, headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403
    cross_site = client.post("/api/v1/auth/tokens", json={}, headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403

    made = client.post("/api/v1/auth/tokens", json={"label": "phone"}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    same_origin = client.post("/api/v1/auth/tokens", json={}, headers={"Origin": "http://localhost"})
    assert same_origin.status_code == 201
    token = made.get_json()["token"]
    assert client.application.test_client().get("/api/v1/users/me", headers=bearer(token)).status_code == 200

    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/users/me").status_code == 401


def test_login_accepts_a_form_and_refuses_bad_input(client, conn):
    give_password(conn, "leader1", "s3cret-pass")
    form = client.post("/api/v1/auth/login", data={"username": "leader1", "password": "s3cret-pass"})
    assert form.status_code == 200
    assert form.get_json()["user"]["role"] == "leader"
    for body, field in (
        ({"username": "leader1"}, "password"),
        ({"username": 5, "password": "x"}, "username"),
    ):
        response = client.post("/api/v1/auth/login", json=body)
        assert response.status_code == 400
        assert response.get_json()["error"]["field"] == field
    malformed = client.post("/api/v1/auth/login", data="{", content_type="application/json")
    assert malformed.status_code == 400 and malformed.get_json()["error"]["field"] == "body"


def test_failed_logins_wait_longer_and_longer_across_workers(settings, conn):
    """Five free wrong passwords for a username from one address; then each attempt waits twice
    as long as the one before (1 s, 2 s, ...), whichever worker answers, and an attempt made
    while waiting is refused without being counted; the right password after the wait logs in."""
    give_password(conn, "admin1", "the-real-one")
    moment = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    workers = [create_app(settings), create_app(settings)]  # two gunicorn workers, one database
    for worker in workers:
        worker.extensions[CLOCK_KEY] = lambda: moment

    def log_in(password: str, worker: int = 0, username: str = "admin1"):
        return (
            workers[worker]
            .test_client()
            .post("/api/v1/auth/login", json={"username": username, "password": password})
        )

    try:
        for attempt in range(PER_USERNAME_AND_ADDRESS):
            assert log_in(f"guess{attempt}", worker=attempt % 2).status_code == 401
        waiting = log_in("the-real-one", worker=1)
        assert waiting.status_code == 429 and waiting.get_json()["error"]["retry_after"] == 1
        moment += timedelta(seconds=1)
        assert log_in("guess5").status_code == 401  # counted: the next wait is 2 s
        moment += timedelta(seconds=1)
        refused = log_in("the-real-one", worker=1)
        assert refused.status_code == 429 and refused.get_json()["error"]["retry_after"] == 1
        moment += timedelta(seconds=1)
        assert log_in("the-real-one", username="ADMIN1").status_code == 200
        # The success starts the username's count afresh.
        assert all(log_in(f"again{n}").status_code == 401 for n in range(PER_USERNAME_AND_ADDRESS))
    finally:
        for worker in workers:
            worker.extensions["gridwatch.db"].close()


def test_concurrent_guesses_get_exactly_the_free_password_checks(app, conn):
    """30 wrong passwords at once for one username: each attempt is counted before its check,
    so five are checked (401) and the rest refused (429), not as many as outran the count."""
    give_password(conn, "admin1", "the-real-one")

    def guess(n: int) -> int:
        return (
            app.test_client()
            .post("/api/v1/auth/login", json={"username": "admin1", "password": f"guess{n}"})
            .status_code
        )

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(guess, range(30)))
    assert statuses.count(401) == PER_USERNAME_AND_ADDRESS
    assert statuses.count(429) == 30 - PER_USERNAME_AND_ADDRESS


def test_a_guesser_delays_their_own_address_not_the_account_s_owner(settings, conn):
    """Behind one trusted proxy, the client's address comes from X-Forwarded-For: a guesser at
    one address waits, the owner at another logs in. Without a trusted proxy the header is not
    believed (a client could write any address into it)."""
    give_password(conn, "admin1", "the-real-one")
    proxied = create_app(settings.model_copy(update={"trusted_proxies": 1}))
    direct = create_app(settings)
    try:

        def log_in(app, address: str, password: str) -> int:
            return (
                app.test_client()
                .post(
                    "/api/v1/auth/login",
                    json={"username": "admin1", "password": password},
                    headers={"X-Forwarded-For": address},
                )
                .status_code
            )

        for n in range(PER_USERNAME_AND_ADDRESS):
            assert log_in(proxied, "203.0.113.9", f"guess{n}") == 401
        assert log_in(proxied, "203.0.113.9", "the-real-one") == 429
        assert log_in(proxied, "198.51.100.7", "the-real-one") == 200
        # Direct: the forged addresses are one client, which has used its free attempts.
        for n in range(PER_USERNAME_AND_ADDRESS):
            assert log_in(direct, f"192.0.2.{n}", f"guess{n}") == 401
        assert log_in(direct, "192.0.2.99", "the-real-one") == 429
    finally:
        proxied.extensions["gridwatch.db"].close()
        direct.extensions["gridwatch.db"].close()


def test_cli_creates_users_and_prints_a_token_last(database_url, app, conn):
    runner = CliRunner()
    env = {"GRIDWATCH_DATABASE_URL": database_url}
    made = runner.invoke(
        main, ["users", "create", "zhou", "--role", "inspector", "--grid", "511423002002002"], env=env
    )
    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    me = app.test_client().get("/api/v1/users/me", headers=bearer(token)).get_json()
    assert me["username"] == "zhou" and me["grids"] == ["511423002002002"]

    handler = runner.invoke(
        main,
        ["users", "create", "qian", "--role", "department", "--department", "water", "--password"],
        input="pw-12345\npw-12345\n",
        env=env,
    )
    assert handler.exit_code == 0, handler.output
    row = conn.execute(
        "SELECT d.code, u.password_hash FROM users u JOIN departments d ON d.id = u.department_id"
        " WHERE username = 'qian'"
    ).fetchone()
    assert row["code"] == "water" and verify_password("pw-12345", row["password_hash"])

    for args, message in (
        (["zhou", "--role", "operator"], "already exists"),
        (["sun", "--role", "department", "--department", "nowhere"], "no department"),
        (["li", "--role", "department"], "department"),
        (["wu", "--role", "operator", "--grid", "511423001001001"], "only an inspector"),
        (["bad name!", "--role", "leader"], "username"),
    ):
        refused = runner.invoke(main, ["users", "create", *args], env=env)
        assert refused.exit_code == 1 and message in refused.output
    count = conn.execute("SELECT count(*) AS n FROM users WHERE username IN ('sun', 'li', 'wu')").fetchone()
    assert count["n"] == 0


def test_demo_accounts_cover_every_role_and_refresh_on_reload(database_url, app):
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as connection:
        first = create_demo_accounts(connection)
    with psycopg.connect(database_url) as connection:  # tuple rows work too
        second = create_demo_accounts(connection)
    assert [account["role"] for account in first] == [
        "inspector",
        "operator",
        "department",
        "leader",
        "admin",
    ]
    client = app.test_client()
    assert client.get("/api/v1/users/me", headers=bearer(first[0]["token"])).status_code == 401
    inspector = client.get("/api/v1/users/me", headers=bearer(second[0]["token"])).get_json()
    assert inspector["grids"] == ["511423001001001"]  # the first grid by code that had a member
    handler = client.get("/api/v1/users/me", headers=bearer(second[2]["token"])).get_json()
    assert handler["department"] == "urban_management"
    login = client.post(
        "/api/v1/auth/login", json={"username": second[3]["username"], "password": second[3]["password"]}
    )
    assert login.status_code == 200


def test_workers_without_a_configured_secret_share_one_kept_in_var(database_url, conn, tmp_path):
    give_password(conn, "operator1", "pw-shared")
    settings = Settings(database_url=database_url, var_dir=tmp_path / "var")
    workers = [create_app(settings), create_app(settings)]
    try:
        assert workers[0].secret_key == workers[1].secret_key == (tmp_path / "var" / "secret_key").read_text()
        browser = workers[0].test_client()
        assert (
            browser.post(
                "/api/v1/auth/login", json={"username": "operator1", "password": "pw-shared"}
            ).status_code
            == 200
        )
        cookie = browser.get_cookie("session")
        other = workers[1].test_client()
        other.set_cookie("session", cookie.value)
        assert other.get("/api/v1/users/me").get_json()["username"] == "operator1"
    finally:
        for worker in workers:
            worker.extensions["gridwatch.db"].close()


def test_a_user_lists_and_revokes_their_own_tokens(client, tokens, conn):
    headers = bearer(tokens["inspector1"])
    phone = client.post("/api/v1/auth/tokens", json={"label": "旧手机"}, headers=headers).get_json()["token"]
    listed = client.get("/api/v1/auth/tokens", headers=headers).get_json()["tokens"]
    assert [t["label"] for t in listed] == ["", "旧手机"] and "token" not in listed[0]
    lost = listed[1]["id"]
    other_users = conn.execute(
        "SELECT t.id FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.username = 'operator1'"
    ).fetchone()["id"]
    assert client.delete(f"/api/v1/auth/tokens/{other_users}", headers=headers).status_code == 404
    assert client.delete(f"/api/v1/auth/tokens/{lost}", headers=headers).status_code == 204
    assert client.get("/api/v1/users/me", headers=bearer(phone)).status_code == 401
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    assert client.get("/api/v1/users/me", headers=bearer(tokens["operator1"])).status_code == 200


def test_a_session_lives_on_the_server_and_ends_for_every_copy_of_its_cookie(settings, conn, tokens):
    """Logout, an idle day and a deactivation each end the session for every copy of the cookie;
    requests renew it."""
    give_password(conn, "operator1", "correct horse")
    moment = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    worker = create_app(settings)
    worker.extensions[CLOCK_KEY] = lambda: moment
    idle = timedelta(hours=settings.session_hours)

    def log_in():
        browser = worker.test_client()
        login = browser.post(
            "/api/v1/auth/login", json={"username": "operator1", "password": "correct horse"}
        )
        assert login.status_code == 200
        copy = worker.test_client()
        copy.set_cookie("session", browser.get_cookie("session").value)
        return browser, copy, login.get_json()["csrf_token"]

    try:
        browser, copy, csrf = log_in()
        assert conn.execute("SELECT count(*) AS n FROM login_sessions").fetchone()["n"] == 1
        assert browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert copy.get("/api/v1/users/me").status_code == 401
        assert conn.execute("SELECT count(*) AS n FROM login_sessions").fetchone()["n"] == 0

        browser, copy, _ = log_in()
        moment += idle - timedelta(minutes=5)
        assert browser.get("/api/v1/users/me").status_code == 200  # renewed
        moment += idle - timedelta(minutes=5)
        assert copy.get("/api/v1/users/me").status_code == 200
        moment += idle + timedelta(minutes=1)
        assert copy.get("/api/v1/users/me").status_code == 401  # idle too long

        browser, copy, _ = log_in()
        admin = {"Authorization": f"Bearer {tokens['admin1']}"}
        off = worker.test_client().patch("/api/v1/users/operator1", json={"active": False}, headers=admin)
        assert off.status_code == 200
        assert copy.get("/api/v1/users/me").status_code == 401
        on = worker.test_client().patch("/api/v1/users/operator1", json={"active": True}, headers=admin)
        assert on.status_code == 200
        assert browser.get("/api/v1/users/me").status_code == 401  # not revived by reactivation
        assert conn.execute("SELECT count(*) AS n FROM login_sessions").fetchone()["n"] == 0
    finally:
        worker.extensions["gridwatch.db"].close()
