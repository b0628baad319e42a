"""`gridwatch db backup | backups | restore`: the command-line side of server/db/backup.py."""

from __future__ import annotations

import socket
import time
from datetime import datetime
from pathlib import Path

import click
import psycopg

from server.db import backup
from server.db.cluster import ClusterError, find_bindir
from server.errors import GridwatchError
from server.settings import Settings


def _setup(settings: Settings) -> backup.BackupSetup:
    setup = backup.backup_setup(settings)
    if setup is None:
        raise click.ClickException(
            "nothing here to back up: run `gridwatch db up` for the local cluster, or, with "
            "GRIDWATCH_DATABASE_URL, set GRIDWATCH_BACKUP_PG_DATA_DIR to that cluster's data "
            "directory on this machine"
        )
    return setup


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def _local(moment: datetime) -> str:
    """In the server's time zone with its offset: as `restore --to` takes it back."""
    return moment.astimezone().isoformat(timespec="seconds")


def _aware_timestamp(_ctx, _param, value: str) -> datetime:
    """ISO 8601 with a time zone. A naive time is refused, not guessed: a restore to the wrong
    hour (the server's zone or the operator's?) loses or keeps the wrong hour of work."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}") from error
    if moment.tzinfo is None:
        raise click.BadParameter(f"add a time zone, e.g. {value}+08:00 (China) or {value}Z (UTC)")
    return moment


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_FAILURES = (backup.BackupError, ClusterError, GridwatchError, psycopg.Error)


@click.command("backup")
@click.option(
    "--type",
    "kind",
    type=click.Choice(backup.BACKUP_TYPES),
    help="[default: full when none exists, else incr]",
)
@click.pass_obj
def db_backup(settings: Settings, kind: str | None) -> None:
    """Back up the whole cluster with pgBackRest (docs/operations.md); the first run turns on
    WAL archiving, restarting an older local cluster once."""
    setup = _setup(settings)
    started = time.monotonic()
    try:
        backup.prepare(setup)
        if backup.enable_archiving(setup):
            click.echo("WAL archiving was off: restarted the cluster once to turn it on")
        taken = backup.back_up(setup, kind)
    except _FAILURES as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"backup {taken.label} ({taken.kind}) in {time.monotonic() - started:.1f} s: "
        f"{_mib(taken.database_bytes)} of data, {_mib(taken.stored_bytes)} stored in {setup.repository}"
    )


@click.command("backups")
@click.pass_obj
def db_backups(settings: Settings) -> None:
    """List the backups in the repository, oldest first."""
    setup = _setup(settings)
    try:
        backups = backup.list_backups(setup)
    except _FAILURES as error:
        raise click.ClickException(str(error)) from error
    if not backups:
        click.echo("no backups yet: run `gridwatch db backup`")
        return
    click.echo(f"{'label':34} {'type':5} {'finished':26} {'took':>7} {'data':>12} {'stored':>12}")
    for item in backups:
        took = (item.stopped_at - item.started_at).total_seconds()
        click.echo(
            f"{item.label:34} {item.kind:5} {_local(item.stopped_at):26} {took:6.0f}s "
            f"{_mib(item.database_bytes):>12} {_mib(item.stored_bytes):>12}"
        )
    click.echo(
        f"a restore can reach any time from {_local(backups[0].stopped_at)} to the newest archived WAL"
    )


@click.command("restore")
@click.option(
    "--to",
    "target",
    required=True,
    callback=_aware_timestamp,
    help="The moment to restore, ISO 8601 with a time zone: 2024-05-01T14:30:00+08:00.",
)
@click.option(
    "--into",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A new (or empty) directory for the restored cluster; never the live one.",
)
@click.option(
    "--port", type=click.IntRange(1024, 65535), help="The restored cluster's port.  [default: a free one]"
)
@click.pass_obj
def db_restore(settings: Settings, target: datetime, into: Path, port: int | None) -> None:
    """Point-in-time restore into a new cluster beside the live one, started so it can be
    checked before anyone switches over. Its database URL is printed on the last line."""
    setup = _setup(settings)
    try:
        restored = backup.restore(setup, target=target, into=into, port=port or _free_port())
    except _FAILURES as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"restored the cluster as of {_local(target)} into {restored.base_dir}")
    click.echo(
        f"running on 127.0.0.1:{restored.port}, without WAL archiving; stop it with "
        f"`{find_bindir() / 'pg_ctl'} stop -D {restored.data_dir}` (as postgres)"
    )
    click.echo(restored.url)


backup_commands = [db_backup, db_backups, db_restore]
