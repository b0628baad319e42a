"""Ordered, forward-only SQL migrations from ``sql/``, then the re-runnable function files of
``sql/functions/``, all applied in one transaction.

Migrations change tables and data; functions, triggers and views live in the function files. A
file ``sql/0043_name.sql`` is version 43. Versions may skip numbers (blocks are reserved per
feature) but are applied in order, never behind one already applied. Applied versions are
recorded with the file's checksum in ``schema_migrations``; an applied file that changed
afterwards is an error, since the database would no longer match the source.

The first migration, ``0042_baseline_0_1.sql``, creates release 0.1's tables, which that release
built with migrations 0001-0042 (kept in ``tests/fixtures/schema-0.1/``). A fresh database runs
it. A release 0.1 database, whose recorded migrations are exactly 0.1's, already has what it
creates: its records of 0.1's migrations are replaced by one of the baseline, and the later
migrations and the function files apply as on any database. An older database is refused: it
upgrades with release 0.1 first.

A function file (``sql/functions/<area>.sql``) holds the current definition of its area's
functions and triggers (``CREATE OR REPLACE``), so it can be read as what the database runs now
and edited in place. It is run again after the migrations whenever its checksum differs from the
one recorded in ``schema_functions``, and after any migration was applied (a migration may have
replaced what the file defines). Files run in name order, and SQL-language function bodies are
checked when they are created, so a file may use what a file sorting before it defines (the
shared ``tiles.sql`` before every ``tiles_<area>.sql``). Migrations and function files go in one
transaction: a running server never sees the tables of one version with the functions of
another, and a failure leaves the database as it was. An advisory lock keeps two migrators apart.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import tuple_row

from server.db.roles import grant_server_role, role_exists
from server.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "sql"
FUNCTIONS_SUBDIR = "functions"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x67726964  # "grid"

BASELINE = "0042_baseline_0_1.sql"
# What release 0.1 recorded in schema_migrations (version: sha256 of the file): a database that
# recorded exactly these has the tables the baseline creates.
RELEASE_0_1_MIGRATIONS = {
    1: "4a8f01bf0a13a78fc5993f7e1a3c2e6c049c2c580e9a51af90276df84a23bd29",
    2: "4953c9b7335f03e9cfc2fe094d88d4867dacd2b8eaa122b0a0817c6f71e679d9",
    3: "489dc8e1a86eee6a726700b571ad6863058a9d29b6dafc3ce9605427396a1e71",
    4: "aba56499884735e961b3eee60ca415df5a6897275a5332b5e85f47b0d44f97ec",
    5: "70b5e3d8fbb3da611bd82f8ae227b7ad7ec91ce96ece0885ebf1cca8b25fee01",
    10: "0ec0d3e7b7aecf04969cfb19e735b5ff886e4d2a2f2105a9d8f2ebfbcc127dcd",
    11: "29bdf36008df7b439276ec0914d911fa5201760249d411c2e91e90773068e3b4",
    20: "752382e2cc98211fdecdc2404b3f4fddd26a61589d0b1046f08f6538ff43db1d",
    21: "1c191fdc2283a92f6a654f6719f4d974b79044b946ce18b9c7bf223183c7edfe",
    25: "dcb8bb6f00d2509e03c4a1b69ae38e5933b11c1b2bd91c9bd77c05c63ab8727b",
    26: "6a0cfc7505695b1afec583168cd09431f38c6c8596560245aca43f92880ba969",
    27: "dca5e42927ad5121ec158500f3138802dab0328aa9b62960d6ad85c312bb0eb5",
    28: "6c51df274788b1f78bc90746352bed32f6f3117dbe4fcaa9debecb1a08cca7b5",
    29: "757bd8402f0e173573b44b5e7af349668f1b15de47e6b78ac434700f041b46bc",
    30: "bca87679244a2db0ed1760bb1e284b0113655922afe931846682b42961b0096b",
    31: "c80181cfa40839a3abf896db52a1ac338bb81a67b8afc6a4b0831cc8aaa97495",
    32: "c8a2a9bc31b7263069a87641b66f4d9faa20300d634862a9da0b105e3b447d77",
    33: "ba18ab9eb871c690927b21ebb60398ccac49ef12f66231be3de878daa35a7aa7",
    34: "a06b915073cad64b54a2c80d3107185b9eb1c88c9113f77563b49ebd0ce1d7b9",
    35: "4038bf0d0e0ffc5e77b1b553cadf8c401bc79312f3b4f45b971d3305e3be66c3",
    36: "d74364aaedc4a8525f7dbc6045833b3c777292fec4a70d38d678da93f81861ae",
    37: "7d3e21fe1b48d4fc3251bb8339ee7397313f525420542ef3215af729ff289ac7",
    38: "f6276115bb4346ec55e7085a7559c5a41f5d0df56e10391040817ad063d123fb",
    39: "9530bf450a2251fe63b3a465be25bdc0021651997547da890ed414c3cdee6510",
    40: "eb0d338a527f9d58236a4ecb6d2bf13cf8a20f121e36ce5403e9a2cf0d84860b",
    41: "d054f99c761fa17933cc1bad77dca3d88f1307faf1f5e117a8e2d17a062034dc",
    42: "4b5738de8703ca341e8f9b72ecafb96e277a15ffe529986c9de9c25285a16ca5",
}


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
                # The server's role gets the rows of what this run created (server/db/roles.py).
                if role_exists(conn):
                    grant_server_role(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    return applied_now


def _apply_migrations(conn: psycopg.Connection, migrations: list[Migration]) -> list[SqlFile]:
    done = _adopt_baseline(conn, migrations, applied_versions(conn))
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


def _adopt_baseline(
    conn: psycopg.Connection, migrations: list[Migration], done: dict[int, str]
) -> dict[int, str]:
    """Record the baseline as applied on a release 0.1 database, in place of 0.1's migrations;
    refuse a database that recorded other migrations before the baseline. Returns the applied
    versions as the rest of the run sees them."""
    baseline = next((m for m in migrations if m.path.name == BASELINE), None)
    if baseline is None or not done:
        return done
    if done == RELEASE_0_1_MIGRATIONS:
        conn.execute("DELETE FROM schema_migrations WHERE version < %s", [baseline.version])
        conn.execute(  # applied_at stays: when the database reached release 0.1
            "UPDATE schema_migrations SET name = %s, checksum = %s WHERE version = %s",
            [baseline.name, baseline.checksum, baseline.version],
        )
        return {baseline.version: baseline.checksum}
    newest = max(done)
    if newest < baseline.version:
        raise MigrationError(
            f"the database's schema (version {newest}) is older than release 0.1 (version "
            f"{baseline.version}): upgrade it with gridwatch 0.1's `gridwatch db migrate` first"
        )
    if min(done) < baseline.version:
        raise MigrationError(
            f"the database's migrations up to version {baseline.version} are not release 0.1's: it "
            "was built from an unreleased source tree; rebuild it or restore a backup of a release"
        )
    return done


def _apply_function_files(conn: psycopg.Connection, files: list[SqlFile], rerun_all: bool) -> list[SqlFile]:
    cur = conn.cursor(row_factory=tuple_row)
    # A file that is gone is forgotten, so that if it comes back it runs again.
    cur.execute("DELETE FROM schema_functions WHERE file <> ALL (%s)", [[f.path.name for f in files]])
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


def pending_files(url: str, directory: Path = MIGRATIONS_DIR) -> list[SqlFile]:
    """What `migrate` would apply, read without applying anything (for `gridwatch doctor`, on a
    running installation: no locks taken)."""
    with psycopg.connect(url, autocommit=True) as conn:
        done = applied_versions(conn)
        migrations = [m for m in discover(directory) if m.version not in done]
        recorded = {}
        if conn.execute("SELECT to_regclass('public.schema_functions') IS NOT NULL").fetchone()[0]:
            recorded = dict(conn.execute("SELECT file, checksum FROM schema_functions").fetchall())
    files = [f for f in function_files(directory) if migrations or recorded.get(f.path.name) != f.checksum]
    return [*migrations, *files]
