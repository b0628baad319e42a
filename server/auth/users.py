"""Users, their roles, and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from server.auth.passwords import hash_password
from server.errors import Conflict, InvalidInput, NotFound

ROLES = ("inspector", "operator", "department", "leader", "admin")
TOKEN_PREFIX = "gw_"


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    department_id: int | None
    # An inspector's grids (server.auth.scope): those held as member, and those and every grid below.
    held_grid_ids: tuple[int, ...] = ()
    scope_grid_ids: tuple[int, ...] = ()


# Read with every user lookup, so a request's scope costs no round trip of its own.
USER_GRIDS_SQL = sql.SQL("""
    (SELECT coalesce(array_agg(h.id ORDER BY h.id), '{}') FROM grids h
      WHERE h.member_id = u.id AND u.role = 'inspector') AS held_grid_ids,
    (SELECT coalesce(array_agg(DISTINCT d.id), '{}') FROM grids h JOIN grids d ON d.path <@ h.path
      WHERE h.member_id = u.id AND u.role = 'inspector') AS scope_grid_ids""")


def user_from_row(row: dict | None) -> User | None:
    if row is None:
        return None
    return User(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        department_id=row["department_id"],
        held_grid_ids=tuple(row.get("held_grid_ids") or ()),
        scope_grid_ids=tuple(row.get("scope_grid_ids") or ()),
    )


def get_user(conn: psycopg.Connection, *, user_id: int) -> User | None:
    row = conn.execute(
        sql.SQL(
            "SELECT u.id, u.username, u.display_name, u.role, u.department_id, {grids}"
            " FROM users u WHERE u.id = %s AND u.active"
        ).format(grids=USER_GRIDS_SQL),
        [user_id],
    ).fetchone()
    return user_from_row(row)


def find_login(conn: psycopg.Connection, *, username: str) -> tuple[User | None, str | None]:
    """The active user with this username (case-insensitive) and the stored password hash."""
    row = conn.execute(
        sql.SQL(
            """SELECT u.id, u.username, u.display_name, u.role, u.department_id, u.password_hash, {grids}
                 FROM users u WHERE lower(u.username) = lower(%s) AND u.active"""
        ).format(grids=USER_GRIDS_SQL),
        [username],
    ).fetchone()
    return user_from_row(row), row["password_hash"] if row else None


def create_user(
    conn: psycopg.Connection,
    *,
    username: str,
    role: str,
    display_name: str | None = None,
    department_code: str | None = None,
    grid_code: str | None = None,
    password: str | None = None,
) -> User:
    """Add a user. A department handler needs ``department_code``; ``grid_code`` makes the new
    user the member of that grid (inspectors only)."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    if (role == "department") != (department_code is not None):
        raise InvalidInput("a department handler, and only one, belongs to a department", field="department")
    if grid_code is not None and role != "inspector":
        raise InvalidInput("only an inspector (grid member) can be given a grid", field="grid")
    department_id = None
    if department_code is not None:
        found = conn.execute("SELECT id FROM departments WHERE code = %s", [department_code]).fetchone()
        if found is None:
            raise NotFound(f"no department with code {department_code!r}", field="department")
        department_id = found["id"]
    try:
        with conn.transaction():
            row = conn.execute(
                """INSERT INTO users (username, display_name, role, department_id, password_hash)
                   VALUES (%s, %s, %s, %s, %s)
                   RETURNING id, username, display_name, role, department_id""",
                [
                    username,
                    display_name or username,
                    role,
                    department_id,
                    hash_password(password) if password else None,
                ],
            ).fetchone()
    except psycopg.errors.UniqueViolation as error:
        raise Conflict(f"user {username!r} already exists", field="username") from error
    except psycopg.errors.CheckViolation as error:
        raise InvalidInput("username: 2-64 letters, digits, '_', '.' or '-'", field="username") from error
    if grid_code is not None:
        assigned = conn.execute(
            "UPDATE grids SET member_id = %s WHERE code = %s RETURNING id", [row["id"], grid_code]
        ).fetchone()
        if assigned is None:
            raise NotFound(f"no grid with code {grid_code!r}", field="grid")
        return get_user(conn, user_id=row["id"])  # now holding the grid
    return user_from_row(row)


def set_password(conn: psycopg.Connection, *, user_id: int, password: str) -> None:
    conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", [hash_password(password), user_id])


def _token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def issue_token(conn: psycopg.Connection, *, user_id: int, label: str = "") -> str:
    """A new API token for the user. Only its sha256 is stored: show the token once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_tokens (user_id, token_sha256, label) VALUES (%s, %s, %s)",
        [user_id, _token_digest(token), label],
    )
    return token


def user_for_token(conn: psycopg.Connection, *, token: str, now: datetime) -> User | None:
    """The active user holding this unrevoked token, or None."""
    found = token_user(conn, token=token, now=now)
    return found[1] if found else None


def token_user(conn: psycopg.Connection, *, token: str, now: datetime) -> tuple[int, User] | None:
    """The token's id and the active user holding it, or None when it is unknown or revoked."""
    row = conn.execute(
        sql.SQL(
            """SELECT t.id AS token_id, t.last_used_at, u.id, u.username, u.display_name, u.role,
                      u.department_id, {grids}
                 FROM api_tokens t JOIN users u ON u.id = t.user_id
                WHERE t.token_sha256 = %s AND t.revoked_at IS NULL AND u.active"""
        ).format(grids=USER_GRIDS_SQL),
        [_token_digest(token)],
    ).fetchone()
    if row is None:
        return None
    # Record use at most once a minute: a write per request would serialise an app's requests.
    if row["last_used_at"] is None or now - row["last_used_at"] > timedelta(minutes=1):
        conn.execute("UPDATE api_tokens SET last_used_at = %s WHERE id = %s", [now, row["token_id"]])
    return row["token_id"], user_from_row(row)


def list_tokens(conn: psycopg.Connection, *, user_id: int) -> list[dict]:
    """The user's tokens without their secrets: enough to recognise and revoke one."""
    return conn.execute(
        """SELECT id, label, created_at, last_used_at, revoked_at FROM api_tokens
            WHERE user_id = %s ORDER BY id""",
        [user_id],
    ).fetchall()


def revoke_token(conn: psycopg.Connection, *, user_id: int, token_id: int, now: datetime) -> bool:
    """Revoke one of the user's own tokens (e.g. of a lost phone). False if there is none."""
    cur = conn.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, %s) WHERE id = %s AND user_id = %s",
        [now, token_id, user_id],
    )
    return cur.rowcount == 1


def revoke_tokens(conn: psycopg.Connection, *, user_id: int, now: datetime) -> int:
    cur = conn.execute(
        "UPDATE api_tokens SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL", [now, user_id]
    )
    return cur.rowcount
