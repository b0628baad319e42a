"""`gridwatch doctor`: is this installation fit to run, and if not, what to do about it.

Each check gives a finding: ok, a warning (works, but look at it), or a problem (must be fixed;
the command then exits non-zero). A problem names the fix in a sentence, for a county's IT staff.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from server.db import backup
from server.db.migrate import pending_files
from server.db.standby import probe
from server.settings import Settings

OK, WARNING, PROBLEM = "ok", "warning", "problem"
# Free space below which the database's disk is a problem, and a warning.
DISK_PROBLEM_BYTES = 2 * 1024**3
DISK_WARNING_FRACTION = 0.10
CLOCK_SKEW_PROBLEM_S = 5.0


@dataclass(frozen=True)
class Finding:
    check: str
    level: str
    message: str


Check = Callable[[Settings], Iterator[Finding]]


def run_checks(settings: Settings) -> list[Finding]:
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings.extend(check(settings))
        except Exception as error:  # a check that breaks is itself a finding, never a traceback
            findings.append(Finding(check.__name__, PROBLEM, f"the check failed: {error}"))
    return findings


def check_database(settings: Settings) -> Iterator[Finding]:
    try:
        url = settings.resolved_database_url()
        with psycopg.connect(url, connect_timeout=5, row_factory=dict_row) as conn:
            row = conn.execute(
                """SELECT current_setting('server_version') AS version, r.rolsuper,
                          (SELECT extversion FROM pg_extension WHERE extname = 'postgis') AS postgis,
                          (SELECT extversion FROM pg_extension WHERE extname = 'plpython3u') AS plpython,
                          extract(epoch FROM clock_timestamp()) AS clock
                     FROM pg_roles r WHERE r.rolname = current_user"""
            ).fetchone()
            h3 = _h3_works(conn)
    except Exception as error:
        yield Finding("database", PROBLEM, f"the server's database is unreachable: {error}")
        return
    yield Finding("database", OK, f"reachable, PostgreSQL {row['version']}")
    if row["postgis"]:
        yield Finding("postgis", OK, f"PostGIS {row['postgis']}")
    else:
        yield Finding("postgis", PROBLEM, "PostGIS is missing: apt-get install postgresql-15-postgis-3")
    if row["plpython"] and h3:
        yield Finding("h3", OK, "PL/Python with h3 answers")
    else:
        yield Finding(
            "h3",
            PROBLEM,
            "PL/Python or its h3 package is missing: "
            "run scripts/system-packages.sh run on the database server",
        )
    if row["rolsuper"]:
        yield Finding(
            "server role",
            PROBLEM,
            "the server connects as a superuser: give GRIDWATCH_DATABASE_URL the role gridwatch_app "
            "(docs/operations.md, 'Roles') and GRIDWATCH_OWNER_DATABASE_URL the owner",
        )
    else:
        yield Finding("server role", OK, "the server's role is not a superuser")
    skew = abs(float(row["clock"]) - datetime.now(UTC).timestamp())
    if skew > CLOCK_SKEW_PROBLEM_S:
        yield Finding(
            "clock", PROBLEM, f"this machine's clock and the database's differ by {skew:.0f} s: set up NTP"
        )
    else:
        yield Finding("clock", OK, f"within {skew:.1f} s of the database's")


def _h3_works(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT tiles.h3_cell(103.3, 29.9, 7)").fetchone()
        return True
    except psycopg.Error:
        conn.rollback()
        return False


def check_migrations(settings: Settings) -> Iterator[Finding]:
    try:
        pending = pending_files(settings.resolved_owner_url())
    except Exception as error:
        yield Finding("migrations", PROBLEM, f"cannot read the schema's state: {error}")
        return
    if pending:
        names = ", ".join(file.path.name for file in pending)
        yield Finding("migrations", PROBLEM, f"not applied: {names}: run `gridwatch db migrate`")
    else:
        yield Finding("migrations", OK, "the schema is up to date")


def check_settings(settings: Settings) -> Iterator[Finding]:
    if settings.secret_key:
        yield Finding("secret key", OK, "GRIDWATCH_SECRET_KEY is set")
    else:
        yield Finding(
            "secret key",
            PROBLEM,
            "GRIDWATCH_SECRET_KEY is not set: set it to a random value (openssl rand -hex 32) in the "
            "units' environment file, the same for every server",
        )


def check_disk(settings: Settings) -> Iterator[Finding]:
    setup = backup.backup_setup(settings)
    paths = {"data": setup.data_dir if setup else settings.var_dir, "var": settings.var_dir}
    if setup:
        paths["backups"] = setup.repository
    for name, path in paths.items():
        existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
        usage = shutil.disk_usage(existing)
        free = f"{usage.free / 1024**3:.1f} GiB free of {usage.total / 1024**3:.0f} GiB"
        if usage.free < DISK_PROBLEM_BYTES:
            yield Finding(f"disk ({name})", PROBLEM, f"{existing}: only {free}")
        elif usage.free < DISK_WARNING_FRACTION * usage.total:
            yield Finding(f"disk ({name})", WARNING, f"{existing}: {free}")
        else:
            yield Finding(f"disk ({name})", OK, f"{existing}: {free}")


def check_backups(settings: Settings) -> Iterator[Finding]:
    age = backup.last_backup_age(settings)
    if not age.ok:
        yield Finding("backups", PROBLEM, age.problem or "no recent backup")
        return
    yield Finding("backups", OK, f"the last backup is {age.age_seconds / 3600:.1f} hours old")
    setup = backup.backup_setup(settings)
    verified = backup.verify(setup)
    if verified.ok:
        yield Finding("backup verify", OK, "pgbackrest verify found every file and WAL segment intact")
    else:
        yield Finding("backup verify", PROBLEM, f"pgbackrest verify: {verified.problem}")


def check_standbys(settings: Settings) -> Iterator[Finding]:
    for url in settings.replica_urls:
        state = probe(url, settings.replica_max_lag_s)
        level = OK if state.status == "streaming" else PROBLEM
        lag = "" if state.lag_seconds is None else f", {state.lag_seconds:.1f} s behind"
        yield Finding(f"standby {state.name}", level, f"{state.status}{lag}")
    try:
        with psycopg.connect(settings.resolved_owner_url(), connect_timeout=5) as conn:
            idle = conn.execute("SELECT slot_name FROM pg_replication_slots WHERE NOT active").fetchall()
    except psycopg.Error:
        return  # the database check already says it is unreachable
    for (slot,) in idle:
        yield Finding(
            f"slot {slot}",
            WARNING,
            "an inactive replication slot keeps WAL for a standby that is not connected: start it, "
            f"or drop the slot if it is gone (SELECT pg_drop_replication_slot('{slot}'))",
        )


CHECKS: tuple[Check, ...] = (
    check_database,
    check_migrations,
    check_settings,
    check_disk,
    check_backups,
    check_standbys,
)
