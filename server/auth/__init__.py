"""Who is calling: a Bearer API token (apps) or a login session cookie (browsers).

The session cookie is signed and holds the session's secret and CSRF token; the session itself
lives in the database (``server.auth.sessions``), so a logout ends every copy of the cookie.

``current_user()`` returns the caller as a ``User`` or None, resolved once per request.
A session cookie authenticates a state-changing request (POST, PUT, PATCH, DELETE) only with
CSRF proof: the ``X-CSRF-Token`` header (or ``csrf_token`` form field) equal to the token handed
out at login, or an ``Origin`` header naming this server (browsers always send it on such
requests; a cross-site attacker cannot forge it). Bearer requests need no CSRF proof: a browser
never attaches the token by itself.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin

from server import clock
from server.auth.sessions import session_user
from server.auth.users import User, user_for_token
from server.db import get_db
from server.errors import Forbidden, Unauthorized

__all__ = ["User", "current_user", "require_user", "init_app"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_SECRET = "sid"
SESSION_CSRF = "csrf"
CSRF_HEADER = "X-CSRF-Token"


def current_user() -> User | None:
    """The authenticated caller of this request, or None (anonymous or a bad token)."""
    if "gridwatch_user" not in g:
        g.gridwatch_user = _resolve_user()
    return g.gridwatch_user


def require_user() -> User:
    user = current_user()
    if user is None:
        if request.headers.get("Authorization"):
            raise Unauthorized(
                "令牌无效或已撤销 / the API token is invalid or revoked", field="Authorization"
            )
        raise Unauthorized("log in or send 'Authorization: Bearer <token>' / 请先登录", field="Authorization")
    return user


def _resolve_user() -> User | None:
    header = request.headers.get("Authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
            return None
        # Every API request starts here: one statement, no transaction of its own.
        with get_db().autocommit_connection() as conn:
            return user_for_token(conn, token=token.strip(), now=clock.now())
    secret = session.get(SESSION_SECRET)
    if not isinstance(secret, str):
        return None
    if request.method not in SAFE_METHODS and not _has_csrf_proof():
        raise Forbidden(
            "a session request that changes data needs the X-CSRF-Token header", field=CSRF_HEADER
        )
    with get_db().autocommit_connection() as conn:
        found = session_user(conn, secret=secret, now=clock.now(), idle=session_lifetime())
    return found[1] if found else None


def session_lifetime() -> timedelta:
    """How long a login session lasts after its last request (``session_hours``)."""
    return current_app.config["PERMANENT_SESSION_LIFETIME"]


def _has_csrf_proof() -> bool:
    expected = session.get(SESSION_CSRF)
    offered = request.headers.get(CSRF_HEADER) or (
        request.form.get("csrf_token") if request.mimetype != "application/json" else None
    )
    if expected and offered and hmac.compare_digest(str(offered), str(expected)):
        return True
    origin = request.headers.get("Origin")
    return bool(origin) and urlsplit(origin).netloc == request.host


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, renewed by every answer but shared ones (``share_answer``)."""

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if g.get("gridwatch_shared_answer"):
            return session.modified
        return super().should_set_cookie(app, session)


def share_answer() -> None:
    """Mark this request's answer as one a shared cache may keep for every user (tiles behind
    deploy/nginx): it must not renew the caller's login cookie, which would be kept with it."""
    g.gridwatch_shared_answer = True


def init_app(app: Flask) -> None:
    settings = app.extensions["gridwatch.settings"]
    app.session_interface = SessionCookies()
    # Set, not setdefault: Flask's defaults already hold these keys (no SameSite, 31 days).
    # The cookie lives as long as the session in the database: both are renewed by requests.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SECURE"] = settings.secure_cookies
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=settings.session_hours)
    from server.auth.views import blueprint

    app.register_blueprint(blueprint)
