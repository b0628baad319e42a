"""Reference data the dashboard's pickers show: categories and departments, named per language."""

from __future__ import annotations

import psycopg


def categories(conn: psycopg.Connection) -> list[dict]:
    return conn.execute(
        "SELECT code, name_zh, name_en FROM categories WHERE active ORDER BY group_code, code"
    ).fetchall()


def departments(conn: psycopg.Connection) -> list[dict]:
    return conn.execute("SELECT code, name_zh, name_en FROM departments ORDER BY code").fetchall()


def name_in(row: dict, language: str) -> str:
    """A row's ``name_zh``/``name_en`` in the language, falling back to Chinese."""
    return (row.get("name_en") if language == "en" else None) or row["name_zh"]


def options(rows: list[dict], language: str) -> list[dict]:
    return [{"label": name_in(row, language), "value": row["code"]} for row in rows]
