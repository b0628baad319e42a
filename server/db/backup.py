"""Backups and point-in-time restore with pgBackRest (docs/operations.md, "Backups and
point-in-time restore").

pgBackRest does the work: full, differential and incremental backups, WAL archiving through
PostgreSQL's ``archive_command``, retention, verification, and restore to a point in time. This
module writes its configuration for one installation, turns WAL archiving on in the cluster, and
runs it as the cluster's OS user (``postgres`` when we are root), who owns the repository.

How pgBackRest reaches PostgreSQL. The local cluster listens on 127.0.0.1 only, without a Unix
socket (server/db/cluster.py). pgBackRest 2.45 has no option for a local cluster over TCP
(``pg1-host`` means another machine over SSH; ``pg1-socket-path`` must be a directory), but it
connects with libpq and names no host unless ``pg1-socket-path`` is set, so libpq's own
``PGHOST=127.0.0.1`` and ``PGPASSFILE`` (a 0600 file beside the repository) take it over TCP with
the ``gridwatch`` role's password; this module sets both whenever it runs pgBackRest. Debian's
system cluster (``backup_pg_data_dir``) keeps pgBackRest's default: the socket in
/var/run/postgresql and peer authentication as ``postgres``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from server.db.cluster import Cluster, ClusterError, give_to_service_user, run_as_service_user, url_with_port
from server.settings import Settings

STANZA = "gridwatch"
# At most this long between a commit and its WAL reaching the repository on a quiet server: a
# restore can reach up to a minute before a disk died. A forced switch on a nearly idle server
# costs a mostly empty 16 MB segment, which compresses to a few KB. Spelled as SHOW prints it.
ARCHIVE_TIMEOUT = "1min"
# A new local cluster (`gridwatch db up`) starts with archiving on but discarding WAL, as
# PostgreSQL's documentation suggests for "archiving later": archive_mode needs a restart,
# archive_command only a reload, so the first `gridwatch db backup` needs no restart. Before a
# first base backup there is nothing the discarded WAL could restore.
ARCHIVE_READY_OPTIONS = {
    "archive_mode": "on",
    "archive_command": "'/bin/true'",
    "archive_timeout": f"'{ARCHIVE_TIMEOUT}'",
}
BACKUP_TYPES = ("full", "diff", "incr")
# The newest backup, as `pgbackrest info` gave it after `gridwatch db backup`, for /health: the
# repository is readable only by the cluster's OS user, and a server running as another user
# must still report a backup's age, in microseconds rather than a subprocess per request.
LAST_BACKUP_FILE = "last-backup.json"


class BackupError(RuntimeError):
    """pgBackRest is missing, failed, or the request cannot be carried out safely."""


@dataclass(frozen=True)
class BackupSetup:
    """One installation's backups: where they go, and the cluster they copy."""

    backup_dir: Path
    data_dir: Path
    port: int
    database_url: str
    retention_full: int
    # The project-local cluster, which gridwatch may restart; None for a system cluster.
    cluster: Cluster | None

    @property
    def config_file(self) -> Path:
        return self.backup_dir / "pgbackrest.conf"

    @property
    def repository(self) -> Path:
        return self.backup_dir / "repo"

    @property
    def password_file(self) -> Path:
        return self.backup_dir / "pgpass"

    def environment(self) -> dict[str, str] | None:
        if self.cluster is None:
            return None  # ours, unchanged
        return os.environ | {"PGHOST": "127.0.0.1", "PGPASSFILE": str(self.password_file)}


@dataclass(frozen=True)
class BackupInfo:
    label: str
    kind: str  # full, diff or incr
    started_at: datetime
    stopped_at: datetime
    database_bytes: int  # the cluster's size when it was taken
    stored_bytes: int  # what this backup added to the repository, compressed


@dataclass(frozen=True)
class CheckResult:
    """For `gridwatch doctor`: ok, or what is wrong in a sentence for a person."""

    ok: bool
    problem: str | None = None


@dataclass(frozen=True)
class BackupAge(CheckResult):
    last_at: datetime | None = None
    age_seconds: float | None = None


def backup_setup(settings: Settings) -> BackupSetup | None:
    """The installation's backups, or None when there is nothing this machine can back up: a
    database elsewhere (GRIDWATCH_DATABASE_URL without `backup_pg_data_dir`), or no local
    cluster yet."""
    common = {"backup_dir": settings.backup_path, "retention_full": settings.backup_retention_full}
    if settings.database_url:
        if settings.backup_pg_data_dir is None:
            return None
        port = int(conninfo_to_dict(settings.database_url).get("port") or 5432)
        return BackupSetup(
            data_dir=settings.backup_pg_data_dir,
            port=port,
            database_url=settings.resolved_owner_url(),
            cluster=None,
            **common,
        )
    cluster = Cluster(settings.cluster_dir, settings.pg_port)
    if not cluster.url_file.exists():
        return None
    return BackupSetup(
        data_dir=cluster.data_dir, port=cluster.port, database_url=cluster.url, cluster=cluster, **common
    )


def find_pgbackrest() -> str:
    path = shutil.which("pgbackrest")
    if path is None:
        raise BackupError("pgBackRest is not installed: apt-get install -y pgbackrest")
    return path


def render_config(setup: BackupSetup) -> str:
    lines = [
        "# Written by gridwatch (server/db/backup.py); `gridwatch db backup` rewrites it.",
        "# The local cluster is reached over TCP: run pgbackrest by hand with",
        f"# PGHOST=127.0.0.1 PGPASSFILE={setup.password_file}" if setup.cluster else "#",
        "[global]",
        f"repo1-path={setup.repository}",
        f"repo1-retention-full={setup.retention_full}",
        "compress-type=zst",
        "process-max=2",
        # Checkpoint at once: otherwise a backup waits up to checkpoint_timeout to begin.
        "start-fast=y",
        f"log-path={setup.backup_dir / 'log'}",
        # Locks per installation: another installation's stanza of the same name must not block.
        f"lock-path={setup.backup_dir / 'lock'}",
        "",
        f"[{STANZA}]",
        f"pg1-path={setup.data_dir}",
        f"pg1-port={setup.port}",
    ]
    if setup.cluster:
        lines.append(f"pg1-user={conninfo_to_dict(setup.database_url)['user']}")
    return "\n".join(lines) + "\n"


def archive_command(setup: BackupSetup) -> str:
    config = shlex.quote(str(setup.config_file))
    return f"{find_pgbackrest()} --config={config} --stanza={STANZA} archive-push %p"


def archive_settings(setup: BackupSetup) -> dict[str, str]:
    """The server settings continuous archiving needs (wal_level's default, replica, is enough)."""
    return {
        "archive_mode": "on",
        "archive_command": archive_command(setup),
        "archive_timeout": ARCHIVE_TIMEOUT,
    }


def prepare(setup: BackupSetup) -> None:
    """Create the backup directory for the cluster's OS user and write the configuration."""
    find_pgbackrest()
    setup.backup_dir.mkdir(parents=True, exist_ok=True)
    # Others may list it and read LAST_BACKUP_FILE; what is inside the folders is private.
    os.chmod(setup.backup_dir, 0o755)
    give_to_service_user(setup.backup_dir)
    for directory in (setup.repository, setup.backup_dir / "log", setup.backup_dir / "lock"):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o750)
        give_to_service_user(directory)
    _write_private(setup.config_file, render_config(setup))
    if setup.cluster:
        parts = conninfo_to_dict(setup.database_url)
        password = parts["password"].replace("\\", "\\\\").replace(":", "\\:")
        _write_private(setup.password_file, f"127.0.0.1:{setup.port}:*:{parts['user']}:{password}\n")


def _write_private(path: Path, text: str) -> None:
    path.write_text(text)
    os.chmod(path, 0o600)
    give_to_service_user(path)


def enable_archiving(setup: BackupSetup) -> bool:
    """Make the cluster archive its WAL into the repository. Returns True when the local cluster
    had to be restarted (archive_mode was off: a cluster older than backups). A system cluster
    is never restarted: a clear error says what to add to its configuration."""
    wanted = archive_settings(setup)
    with psycopg.connect(setup.database_url, autocommit=True) as conn:
        current = {name: conn.execute("SELECT current_setting(%s)", [name]).fetchone()[0] for name in wanted}
        if current == wanted:
            return False
        if setup.cluster is None:
            lines = "\n".join(f"{name} = '{value}'" for name, value in wanted.items())
            raise BackupError(
                "the cluster does not archive its WAL into gridwatch's repository. Add to "
                f"/etc/postgresql/15/main/conf.d/gridwatch-backup.conf:\n{lines}\n"
                "then restart it (systemctl restart postgresql@15-main) and run this again."
            )
        for name, value in wanted.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        conn.execute("SELECT pg_reload_conf()")
    if current["archive_mode"] == "on":
        return False
    setup.cluster.stop()
    setup.cluster.start()
    return True


def pgbackrest(setup: BackupSetup, command: str, *options: str) -> str:
    """Run one pgBackRest command on the stanza; its standard output, or BackupError."""
    args = [find_pgbackrest(), f"--config={setup.config_file}", f"--stanza={STANZA}", *options, command]
    result = run_as_service_user(args, env=setup.environment())
    if result.returncode != 0:
        output = "\n".join(part.strip() for part in (result.stdout, result.stderr) if part.strip())
        raise BackupError(f"pgbackrest {command} failed:\n{output}")
    return result.stdout


def _stanza_info(setup: BackupSetup) -> dict:
    (stanza,) = json.loads(pgbackrest(setup, "info", "--output=json"))
    return stanza


def list_backups(setup: BackupSetup) -> list[BackupInfo]:
    """The repository's backups, oldest first; empty when the stanza is not created yet."""
    if not setup.config_file.exists():
        return []
    return [
        BackupInfo(
            label=entry["label"],
            kind=entry["type"],
            started_at=datetime.fromtimestamp(entry["timestamp"]["start"], UTC),
            stopped_at=datetime.fromtimestamp(entry["timestamp"]["stop"], UTC),
            database_bytes=entry["info"]["size"],
            stored_bytes=entry["info"]["repository"]["delta"],
        )
        for entry in _stanza_info(setup)["backup"]
    ]


def back_up(setup: BackupSetup, kind: str | None = None) -> BackupInfo:
    """Take a backup (default: full when none exists, else incremental) and return it. pgBackRest
    then expires what the retention no longer keeps."""
    # Status 1 is "missing stanza path"; 2, "no valid backups", means the stanza exists.
    if _stanza_info(setup)["status"]["code"] == 1:
        pgbackrest(setup, "stanza-create")
    backups = list_backups(setup)
    pgbackrest(setup, "backup", f"--type={kind or ('incr' if backups else 'full')}")
    newest = list_backups(setup)[-1]
    record = {"label": newest.label, "type": newest.kind, "stopped_at": newest.stopped_at.isoformat()}
    staged = setup.backup_dir / f".{LAST_BACKUP_FILE}"
    staged.write_text(json.dumps(record) + "\n")
    os.chmod(staged, 0o644)
    give_to_service_user(staged)
    staged.replace(setup.backup_dir / LAST_BACKUP_FILE)
    return newest


def recorded_last_backup(settings: Settings) -> datetime | None:
    """When the newest backup `gridwatch db backup` took ended; None before the first."""
    try:
        record = json.loads((settings.backup_path / LAST_BACKUP_FILE).read_text())
    except (OSError, ValueError):
        return None
    return datetime.fromisoformat(record["stopped_at"])


def restore(setup: BackupSetup, *, target: datetime, into: Path, port: int) -> Cluster:
    """Restore the cluster as it was at ``target`` into a new cluster directory ``into`` (data
    in ``into/data``, URL in ``into/database-url``, as under var/pg), start it on ``port``, wait
    until it has replayed the WAL up to ``target`` and promoted, and return it. The live
    cluster is never touched: checking the copy and switching over are a person's decision."""
    if target.tzinfo is None:
        raise BackupError("the time needs a time zone, e.g. 2024-05-01T14:30:00+08:00")
    into = into.resolve()
    live = setup.data_dir.resolve()
    if into == live or into in live.parents or live in into.parents:
        raise BackupError(f"{into} holds the live cluster: a restore goes into a new directory")
    if into.exists() and any(into.iterdir()):
        raise BackupError(f"{into} is not empty: a restore goes into a new or empty directory")
    backups = list_backups(setup)
    if not backups:
        raise BackupError("there is no backup to restore from")
    if target < backups[0].stopped_at:
        raise BackupError(
            f"the oldest backup ended at {backups[0].stopped_at.isoformat()}: a restore cannot reach earlier"
        )
    restored = Cluster(into, port)
    for directory in (into, restored.data_dir, restored.log_file.parent):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        give_to_service_user(directory)
    pgbackrest(
        setup,
        "restore",
        "--type=time",
        # pgBackRest picks the newest backup that ended before this; the format is its own.
        f"--target={target.astimezone(UTC).isoformat(sep=' ')}",
        "--target-action=promote",
        f"--pg1-path={restored.data_dir}",
    )
    # postgresql.auto.conf is read last, so these win over the copied settings: its own port,
    # and no archiving, or the copy would push its WAL into the production repository as the
    # same stanza.
    with open(restored.data_dir / "postgresql.auto.conf", "a") as conf:
        conf.write(f"\n# gridwatch db restore: a copy to check\nport = {port}\narchive_mode = off\n")
    restored.url_file.write_text(url_with_port(setup.database_url, port) + "\n")
    os.chmod(restored.url_file, 0o600)
    if not (restored.data_dir / "postgresql.conf").exists():
        raise BackupError(
            f"restored into {restored.data_dir}, without the configuration Debian keeps in /etc: start "
            f"it with `pg_createcluster 15 restored -d {restored.data_dir} && pg_ctlcluster 15 restored "
            "start` (docs/operations.md)"
        )
    try:
        restored.start()
        _wait_for_promotion(restored)
    except ClusterError as error:
        hint = ""
        if "before configured recovery target was reached" in str(error):
            hint = (
                "\nNo commit after that time is in the archived WAL yet (recovery stops at the first "
                "one after it): choose an earlier time, or wait until a later commit is archived (at "
                f"most {ARCHIVE_TIMEOUT} after it)."
            )
        raise BackupError(f"{error}{hint}\nRemove {into} before trying again.") from error
    return restored


def _wait_for_promotion(restored: Cluster, timeout: float = 600.0) -> None:
    """Recovery replays the archived WAL after the server starts accepting connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(restored.url, connect_timeout=5) as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    return
        except psycopg.OperationalError:
            if not restored.is_running():
                log_tail = "\n".join(restored.log_file.read_text().splitlines()[-15:])
                raise ClusterError(f"the restored cluster stopped during recovery:\n{log_tail}") from None
        time.sleep(0.2)
    raise ClusterError(
        f"the restored cluster in {restored.base_dir} did not finish recovery in {timeout:.0f} s"
    )


def verify(setup: BackupSetup) -> CheckResult:
    """pgBackRest's `verify`: every backup file and archived WAL segment is checked against its
    recorded checksum, and the WAL has no gaps."""
    try:
        # 2.45 exits 0 even when it finds damage: its report (printed only then) says so.
        report = pgbackrest(setup, "verify", "--output=text")
    except BackupError as error:
        return CheckResult(ok=False, problem=str(error))
    if "status: error" in report:
        return CheckResult(ok=False, problem=f"pgbackrest verify found damage:\n{report.strip()}")
    return CheckResult(ok=True)


def last_backup_age(
    settings: Settings, *, max_age: timedelta = timedelta(hours=26), now: datetime | None = None
) -> BackupAge:
    """How old the newest backup is. Not ok when none exists or it is older than ``max_age``
    (default: a nightly backup plus two hours for a slow one)."""
    setup = backup_setup(settings)
    if setup is None:
        return BackupAge(ok=False, problem="backups are not configured for this database")
    try:
        backups = list_backups(setup)
    except BackupError as error:
        return BackupAge(ok=False, problem=str(error))
    if not backups:
        return BackupAge(ok=False, problem="no backup yet: run `gridwatch db backup`")
    last_at = backups[-1].stopped_at
    age = (now or datetime.now(UTC)) - last_at
    if age > max_age:
        problem = (
            f"the last backup is {age / timedelta(hours=1):.0f} hours old (at {last_at:%Y-%m-%d %H:%M} UTC)"
        )
        return BackupAge(ok=False, problem=problem, last_at=last_at, age_seconds=age.total_seconds())
    return BackupAge(ok=True, last_at=last_at, age_seconds=age.total_seconds())
