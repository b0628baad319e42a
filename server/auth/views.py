"""Login, logout, API tokens and ``users/me`` under ``/api/v1``."""

from __future__ import annotations

import secrets

from flask import Blueprint, jsonify, request, session
from pydantic import Field

from server import clock
from server.auth import SESSION_CSRF, SESSION_SECRET, current_user, require_user, session_lifetime
from server.auth.passwords import verify_password
from server.auth.ratelimit import clear_attempts, count_attempt
from server.auth.sessions import end_session, start_session
from server.auth.users import User, find_login, issue_token, list_tokens, revoke_token
from server.db import get_db
from server.errors import NotFound, Unauthorized
from server.openapi import PUBLIC, documented
from server.openapi_schemas import json_reply, listing, ref
from server.schema import BodyModel, Text, parse_body

blueprint = Blueprint("auth", __name__, url_prefix="/api/v1")


def describe_user(conn, user: User) -> dict:
    """The caller as the API shows it: with the department code and, for a grid member, the
    codes of the grids they hold."""
    row = conn.execute(
        """SELECT d.code AS department,
                  coalesce(array_agg(g.code ORDER BY g.code) FILTER (WHERE g.id IS NOT NULL), '{}')
                      AS grids
             FROM users u
             LEFT JOIN departments d ON d.id = u.department_id
             LEFT JOIN grids g ON g.member_id = u.id
            WHERE u.id = %s
            GROUP BY d.code""",
        [user.id],
    ).fetchone()
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "department": row["department"] if row else None,
        "grids": row["grids"] if row else [],
    }


class LoginInput(BodyModel):
    username: Text = Field(min_length=1, max_length=64)
    password: Text = Field(min_length=1, max_length=1000)


class TokenInput(BodyModel):
    label: Text = Field("", max_length=200, description="What the token is for, e.g. the phone's name")


@blueprint.post("/auth/login")
@documented(
    summary="Log in with a password: sets the session cookie and returns a CSRF token",
    body=LoginInput,
    body_media=("application/json", "application/x-www-form-urlencoded"),
    responses={
        200: json_reply(
            {
                "type": "object",
                "required": ["user", "csrf_token"],
                "properties": {"user": ref("Me"), "csrf_token": {"type": "string"}},
            }
        )
    },
    errors=(401, 429),
    security=PUBLIC,
)
def login():
    given = parse_body(LoginInput)
    username, password = given.username, given.password
    remote_addr = request.remote_addr or ""
    now = clock.now()
    with get_db().connection() as conn:
        # Counted (and committed) before the check: concurrent guesses cannot outrun the count.
        count_attempt(conn, username=username, remote_addr=remote_addr, now=now)
        user, password_hash = find_login(conn, username=username)
        # Checked whether or not the user exists (a missing hash costs a dummy scrypt run): the
        # time of a refusal must not tell which usernames exist.
        matches = verify_password(password, password_hash)
        if user is None or not matches:
            raise Unauthorized("wrong username or password / 用户名或密码错误", field="password")
        clear_attempts(conn, username=username, remote_addr=remote_addr)
        secret = start_session(
            conn, user_id=user.id, remote_addr=remote_addr, now=now, idle=session_lifetime()
        )
        described = describe_user(conn, user)
    session.clear()
    session.permanent = True
    session[SESSION_SECRET] = secret
    session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return jsonify({"user": described, "csrf_token": session[SESSION_CSRF]})


@blueprint.post("/auth/logout")
@documented(
    summary="End the session (without one: nothing to end, still 204)",
    responses={204: {"description": "done"}},
    errors=(403,),
    security=PUBLIC,
)
def logout():
    current_user()  # a session logout needs CSRF proof like any other change
    secret = session.get(SESSION_SECRET)
    if isinstance(secret, str):
        with get_db().connection() as conn:
            end_session(conn, secret=secret)
    session.clear()
    return "", 204


@blueprint.post("/auth/tokens")
@documented(
    summary="A new API token for the caller (shown once)",
    body=TokenInput,
    body_required=False,
    responses={
        201: json_reply(
            {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}
        )
    },
    errors=(403,),
)
def create_token():
    """A new API token for the caller, e.g. for the phone page's offline queue."""
    user = require_user()
    given = parse_body(TokenInput, optional=True)
    with get_db().connection() as conn:
        token = issue_token(conn, user_id=user.id, label=given.label)
    return jsonify({"token": token}), 201


@blueprint.get("/auth/tokens")
@documented(
    summary="The caller's tokens (without secrets)",
    responses={200: json_reply(listing("tokens", ref("Token")))},
)
def tokens():
    user = require_user()
    with get_db().connection() as conn:
        rows = list_tokens(conn, user_id=user.id)
    return jsonify({"tokens": [{key: _iso(value) for key, value in row.items()} for row in rows]})


@blueprint.delete("/auth/tokens/<int:token_id>")
@documented(
    summary="Revoke one of the caller's tokens (a lost phone)",
    responses={204: {"description": "revoked"}},
    errors=(403, 404),
)
def revoke(token_id: int):
    """Revoke one of the caller's own tokens, e.g. the one of a lost phone."""
    user = require_user()
    with get_db().connection() as conn:
        if not revoke_token(conn, user_id=user.id, token_id=token_id, now=clock.now()):
            raise NotFound(f"you have no token {token_id}", field="token_id")
    return "", 204


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


@blueprint.get("/users/me")
@documented(
    summary="The caller, with department and the grids they hold", responses={200: json_reply(ref("Me"))}
)
def me():
    user = require_user()
    with get_db().connection() as conn:
        body = describe_user(conn, user)
    if SESSION_CSRF in session and not request.headers.get("Authorization"):
        body["csrf_token"] = session[SESSION_CSRF]
    return jsonify(body)
