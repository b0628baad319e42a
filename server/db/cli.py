"""`gridwatch db …`: the database's commands. The local cluster (up, down), the schema
(status, migrate), the server's role, a standby, and pgBackRest's backups (server/db/backup_cli.py)."""

from __future__ import annotations

from pathlib import Path

import click
import psycopg

from server.cli_support import fail, local_cluster
from server.db.backup_cli import backup_commands
from server.db.cluster import ClusterError
from server.db.migrate import MigrationError, migrate, schema_version
from server.db.roles import ensure_local_server_role
from server.errors import GridwatchError
from server.settings import Settings


@click.group()
def db() -> None:
    """The database: the local cluster under var/, or GRIDWATCH_DATABASE_URL."""


@db.command("up")
@click.pass_obj
def db_up(settings: Settings) -> None:
    """Create (first time) and start the local PostGIS cluster."""
    if settings.database_url:
        try:
            psycopg.connect(settings.database_url, connect_timeout=5).close()
        except psycopg.OperationalError as error:
            fail(f"GRIDWATCH_DATABASE_URL is set but unreachable: {error}")
        click.echo("using GRIDWATCH_DATABASE_URL; no local cluster started")
        return
    cluster = local_cluster(settings)
    try:
        created = cluster.up()
        ensure_local_server_role(cluster)
    except ClusterError as error:
        fail(str(error))
    state = "created" if created else "exists"
    click.echo(f"PostGIS cluster running on 127.0.0.1:{cluster.port} (database {state})")


@db.command("down")
@click.pass_obj
def db_down(settings: Settings) -> None:
    """Stop the local cluster."""
    try:
        local_cluster(settings).stop()
    except ClusterError as error:
        fail(str(error))
    click.echo("PostGIS cluster stopped")


@db.command("status")
@click.pass_obj
def db_status(settings: Settings) -> None:
    """Whether the database answers, and its schema version."""
    try:
        url = settings.resolved_owner_url()
        with psycopg.connect(url, connect_timeout=5) as conn:
            version = schema_version(conn)
    except (GridwatchError, psycopg.OperationalError) as error:
        fail(f"database unavailable: {error}")
    click.echo(f"database up, schema version {version}")


@db.command("migrate")
@click.pass_obj
def db_migrate(settings: Settings) -> None:
    """Apply pending migrations and changed function files from sql/, in one transaction."""
    try:
        applied = migrate(settings.resolved_owner_url())
    except (MigrationError, GridwatchError) as error:
        fail(str(error))
    for migration in applied:
        click.echo(f"applied {migration.path.name}")
    click.echo("schema up to date")


for command in backup_commands:  # gridwatch db backup | backups | restore
    db.add_command(command)


@db.command("server-role")
@click.pass_obj
def db_server_role(settings: Settings) -> None:
    """Create the server's role named in GRIDWATCH_DATABASE_URL, with its password there, and
    grant it the rows (run as the owner, GRIDWATCH_OWNER_DATABASE_URL)."""
    from psycopg.conninfo import conninfo_to_dict

    from server.db.roles import SERVER_ROLE, create_server_role, grant_server_role

    server = conninfo_to_dict(settings.resolved_database_url())
    owner_url = settings.resolved_owner_url()
    if server.get("user") != SERVER_ROLE or not server.get("password"):
        fail(f"GRIDWATCH_DATABASE_URL must name the role {SERVER_ROLE} and its password")
    try:
        create_server_role(owner_url, password=server["password"])
        with psycopg.connect(owner_url) as conn:
            grant_server_role(conn)
    except psycopg.Error as error:
        fail(str(error))
    click.echo(f"role {SERVER_ROLE} ready: it reads and writes rows, nothing more")


@db.command("standby")
@click.option(
    "--into",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A new directory for the standby's cluster.",
)
@click.option("--port", required=True, type=click.IntRange(1024, 65535), help="The standby's port.")
@click.pass_obj
def db_standby(settings: Settings, into: Path, port: int) -> None:
    """Make a streaming standby of the database with pg_basebackup and start it.

    Its database URL is printed on the last line: list it in GRIDWATCH_REPLICA_URLS."""
    from server.db.replication import create_standby

    try:
        standby = create_standby(settings.resolved_owner_url(), into=into.resolve(), port=port)
    except (ClusterError, GridwatchError, psycopg.Error) as error:
        fail(str(error))
    click.echo(f"standby streaming from the primary on 127.0.0.1:{port}")
    click.echo(standby.url)
