"""Administration: category settings (time limits, default departments, duplicate search) and
users. Only admins reach these functions (the views check)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
from psycopg import sql

from server.auth.sessions import end_user_sessions
from server.errors import NotFound, Unprocessable

# How a category's time limit runs: in calendar time, or in the work calendar's working hours.
TIME_LIMIT_UNITS = ("calendar", "working")

CATEGORY_QUERY = """SELECT c.code, c.name_zh, c.name_en, c.group_code AS "group",
                           extract(epoch FROM c.time_limit)::integer AS time_limit_s, c.time_limit_unit,
                           d.code AS default_department, c.default_priority, c.duplicate_radius_m,
                           extract(epoch FROM c.duplicate_window)::integer AS duplicate_window_s, c.active
                      FROM categories c LEFT JOIN departments d ON d.id = c.default_department_id"""


def list_categories(conn: psycopg.Connection) -> list[dict]:
    return conn.execute(CATEGORY_QUERY + " ORDER BY c.code").fetchall()


def update_category(conn: psycopg.Connection, *, code: str, changes: dict) -> dict:
    """Change a category. ``changes`` may hold name_zh, name_en, time_limit_s, time_limit_unit,
    default_department (a code, or None for none), default_priority, duplicate_radius_m,
    duplicate_window_s, active. New time limits apply to later dispatches only."""
    if conn.execute("SELECT 1 FROM categories WHERE code = %s FOR UPDATE", [code]).fetchone() is None:
        raise NotFound(f"no category {code!r}", field="code")
    columns: dict = {}
    for name in ("name_zh", "name_en", "default_priority", "duplicate_radius_m", "active", "time_limit_unit"):
        if name in changes:
            columns[name] = changes[name]
    if "time_limit_s" in changes:
        columns["time_limit"] = timedelta(seconds=changes["time_limit_s"])
    if "duplicate_window_s" in changes:
        columns["duplicate_window"] = timedelta(seconds=changes["duplicate_window_s"])
    if "default_department" in changes:
        department = changes["default_department"]
        if department is None:
            columns["default_department_id"] = None
        else:
            found = conn.execute("SELECT id FROM departments WHERE code = %s", [department]).fetchone()
            if found is None:
                raise Unprocessable(f"no department {department!r}", field="default_department")
            columns["default_department_id"] = found["id"]
    if columns:
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(column)) for column in columns
        )
        conn.execute(
            sql.SQL("UPDATE categories SET {} WHERE code = %s").format(assignments), [*columns.values(), code]
        )
    return conn.execute(CATEGORY_QUERY + " WHERE c.code = %s", [code]).fetchone()


def list_users(conn: psycopg.Connection) -> list[dict]:
    return conn.execute(
        """SELECT u.id, u.username, u.display_name, u.role, d.code AS department, u.active,
                  u.password_hash IS NOT NULL AS has_password,
                  coalesce(array_agg(g.code ORDER BY g.code) FILTER (WHERE g.id IS NOT NULL), '{}') AS grids
             FROM users u
             LEFT JOIN departments d ON d.id = u.department_id
             LEFT JOIN grids g ON g.member_id = u.id
            GROUP BY u.id, d.code ORDER BY u.username"""
    ).fetchall()


def set_user_active(conn: psycopg.Connection, *, username: str, active: bool) -> None:
    """Activate or deactivate a user; a deactivated user's tokens and sessions stop working."""
    row = conn.execute(
        "UPDATE users SET active = %s WHERE username = %s RETURNING id", [active, username]
    ).fetchone()
    if row is None:
        raise NotFound(f"no user {username!r}", field="username")
    if not active:
        # Ended, not merely refused: reactivating the user must not revive old cookies.
        end_user_sessions(conn, user_id=row["id"])
