"""Ordered, forward-only SQL migrations from ``sql/``, each applied in one transaction.

A file ``sql/0003_patrols.sql`` is version 3. Versions may skip numbers (blocks are reserved
per feature) but are applied in order, never behind one already applied. Applied versions are
recorded with the file's checksum in ``schema_migrations``; an applied file that changed
afterwards is an error, since the database would no longer match the source.
An advisory lock keeps two migrators apart.
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
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x67726964  # "grid"


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return migrations


def applied_versions(conn: psycopg.Connection) -> dict[int, str]:
    cur = conn.cursor(row_factory=tuple_row)
    exists = cur.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return {}
    rows = cur.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {version: checksum for version, checksum in rows}


def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply every pending migration. Returns the ones applied now."""
    migrations = discover(directory)
    applied_now: list[Migration] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = applied_versions(conn)
            newest_applied = max(done, default=0)
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
                with conn.transaction():
                    conn.execute(migration.text)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        [migration.version, migration.name, migration.checksum],
                    )
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    return applied_now


def schema_version(conn: psycopg.Connection) -> int:
    versions = applied_versions(conn)
    return max(versions, default=0)
