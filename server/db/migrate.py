"""Ordered, forward-only SQL migrations from ``sql/``, then the re-runnable function files of
``sql/functions/``, all applied in one transaction.

A file ``sql/0003_patrols.sql`` is version 3. Versions may skip numbers (blocks are reserved
per feature) but are applied in order, never behind one already applied. Applied versions are
recorded with the file's checksum in ``schema_migrations``; an applied file that changed
afterwards is an error, since the database would no longer match the source.

A function file (``sql/functions/<area>.sql``) holds the current definition of its area's
functions (``CREATE OR REPLACE``), so it can be read as what the database runs now and edited in
place. It is run again after the migrations whenever its checksum differs from the one recorded
in ``schema_functions``, and after any migration was applied (a migration may have replaced
what the file defines). Migrations and function files go in one transaction: a running server
never sees the tables of one version with the functions of another, and a failure leaves the
database as it was. An advisory lock keeps two migrators apart.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import tuple_row

from server.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "sql"
FUNCTIONS_SUBDIR = "functions"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x67726964  # "grid"


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class SqlFile:
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Migration(SqlFile):
    version: int
    name: str


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        migrations.append(Migration(path, int(match[1]), match[2]))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return migrations


def function_files(directory: Path = MIGRATIONS_DIR) -> list[SqlFile]:
    return [SqlFile(path) for path in sorted((directory / FUNCTIONS_SUBDIR).glob("*.sql"))]


def applied_versions(conn: psycopg.Connection) -> dict[int, str]:
    cur = conn.cursor(row_factory=tuple_row)
    exists = cur.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return {}
    rows = cur.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {version: checksum for version, checksum in rows}


def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> list[SqlFile]:
    """Apply every pending migration and every changed function file, in one transaction.
    Returns the files applied now, migrations first."""
    migrations = discover(directory)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            with conn.transaction():
                conn.execute(
                    """CREATE TABLE IF NOT EXISTS schema_migrations (
                           version integer PRIMARY KEY,
                           name text NOT NULL,
                           checksum text NOT NULL,
                           applied_at timestamptz NOT NULL DEFAULT now())"""
                )
                conn.execute(
                    """CREATE TABLE IF NOT EXISTS schema_functions (
                           file text PRIMARY KEY,
                           checksum text NOT NULL,
                           applied_at timestamptz NOT NULL DEFAULT now())"""
                )
                applied_now: list[SqlFile] = _apply_migrations(conn, migrations)
                applied_now += _apply_function_files(
                    conn, function_files(directory), rerun_all=bool(applied_now)
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    return applied_now


def _apply_migrations(conn: psycopg.Connection, migrations: list[Migration]) -> list[SqlFile]:
    done = applied_versions(conn)
    newest_applied = max(done, default=0)
    applied: list[SqlFile] = []
    for migration in migrations:
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise MigrationError(
                    f"{migration.path.name} changed after it was applied; "
                    "write a new migration instead of editing an old one"
                )
            continue
        if migration.version < newest_applied:
            raise MigrationError(
                f"{migration.path.name} is older than applied version {newest_applied}; "
                "migrations are forward-only: renumber it after the newest"
            )
        conn.execute(migration.text)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
            [migration.version, migration.name, migration.checksum],
        )
        applied.append(migration)
    return applied


def _apply_function_files(conn: psycopg.Connection, files: list[SqlFile], rerun_all: bool) -> list[SqlFile]:
    cur = conn.cursor(row_factory=tuple_row)
    recorded = dict(cur.execute("SELECT file, checksum FROM schema_functions").fetchall())
    applied: list[SqlFile] = []
    for file in files:
        if not rerun_all and recorded.get(file.path.name) == file.checksum:
            continue
        conn.execute(file.text)
        conn.execute(
            """INSERT INTO schema_functions (file, checksum) VALUES (%s, %s)
               ON CONFLICT (file) DO UPDATE SET checksum = excluded.checksum, applied_at = now()""",
            [file.path.name, file.checksum],
        )
        applied.append(file)
    return applied


def schema_version(conn: psycopg.Connection) -> int:
    versions = applied_versions(conn)
    return max(versions, default=0)
