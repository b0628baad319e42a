"""One demo account per role for the demo county, with fresh random passwords and tokens.

Run again (a re-load of the demo) and the same usernames get new passwords and tokens; their
old tokens are revoked. The inspector becomes the member of a real grid, so filing and
verifying work in the app; the department handler joins the department that handles the most
common demo category (sanitation).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import psycopg
from psycopg.rows import tuple_row

from server.auth.passwords import hash_password
from server.auth.users import issue_token, revoke_tokens

DEMO_ACCOUNTS = (
    ("demo_inspector", "inspector", "演示网格员"),
    ("demo_operator", "operator", "演示调度员"),
    ("demo_department", "department", "演示部门处置员"),
    ("demo_leader", "leader", "演示领导"),
    ("demo_admin", "admin", "演示管理员"),
)


def _demo_department_id(conn: psycopg.Connection) -> int:
    (department_id,) = (
        conn.cursor(row_factory=tuple_row)
        .execute(
            """SELECT coalesce(
                      (SELECT default_department_id FROM categories WHERE code = 'sanitation'),
                      (SELECT id FROM departments ORDER BY code LIMIT 1)) AS id"""
        )
        .fetchone()
    )
    if department_id is None:
        raise RuntimeError("no department to put the demo department handler in")
    return department_id


def create_demo_accounts(conn: psycopg.Connection) -> list[dict]:
    """Create or refresh the demo users; returns [{username, role, password, token}].
    Works with any row factory; the caller owns the transaction."""
    department_id = _demo_department_id(conn)
    cur = conn.cursor(row_factory=tuple_row)
    accounts = []
    for username, role, display_name in DEMO_ACCOUNTS:
        password = secrets.token_urlsafe(9)
        password_hash = hash_password(password)
        (user_id,) = cur.execute(
            """INSERT INTO users (username, display_name, role, department_id, password_hash)
               VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (username) DO UPDATE
                  SET display_name = EXCLUDED.display_name, role = EXCLUDED.role,
                      department_id = EXCLUDED.department_id,
                      password_hash = EXCLUDED.password_hash, active = true
               RETURNING id""",
            [username, display_name, role, department_id if role == "department" else None, password_hash],
        ).fetchone()
        revoke_tokens(conn, user_id=user_id, now=datetime.now(UTC))
        token = issue_token(conn, user_id=user_id, label="demo account")
        if role == "inspector":
            _give_grid(conn, user_id=user_id)
        accounts.append({"username": username, "role": role, "password": password, "token": token})
    return accounts


def _give_grid(conn: psycopg.Connection, *, user_id: int) -> None:
    """Make the demo inspector the member of the first grid (by code) that has one, else of the
    first grid: grids deliberately left without a member stay without one."""
    conn.execute(
        """UPDATE grids SET member_id = %s
            WHERE id = (SELECT id FROM grids WHERE level = 'grid'
                         ORDER BY member_id IS NULL, code LIMIT 1)""",
        [user_id],
    )
