"""`gridwatch doctor` on a real installation: a local cluster with the server's own role, its
migrations, a pgBackRest backup and a secret key is fit to run (exit 0); take the backup, the
secret or a function file away and it names each problem (exit 1)."""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner
from test_backup import installation  # noqa: F401 - a cluster of this module's own

from server.cli import main
from server.db.cluster import Cluster
from server.db.migrate import migrate
from server.db.roles import ensure_local_server_role
from server.settings import Settings


def doctor(settings: Settings, **env: str | None):
    environment = {
        "GRIDWATCH_VAR_DIR": str(settings.var_dir),
        "GRIDWATCH_PG_PORT": str(settings.pg_port),
        "GRIDWATCH_DATABASE_URL": None,
        "GRIDWATCH_OWNER_DATABASE_URL": None,
        "GRIDWATCH_BACKUP_DIR": None,
        "GRIDWATCH_SECRET_KEY": "a-secret-for-the-doctor-test",
        "GRIDWATCH_REPLICA_URLS": None,
    } | env
    return CliRunner().invoke(main, ["doctor"], env=environment)


@pytest.fixture(scope="module")
def production(installation: Settings) -> Settings:  # noqa: F811
    """The installation as `gridwatch db up` and `db migrate` leave it: the server connects as
    its own role, which migrate granted the rows."""
    ensure_local_server_role(Cluster(installation.cluster_dir, installation.pg_port))
    migrate(installation.resolved_owner_url())
    return installation


def test_an_installation_without_a_backup_or_secret_names_both(production: Settings):
    result = doctor(production, GRIDWATCH_SECRET_KEY=None)
    assert result.exit_code == 1, result.output
    assert "PROBLEM backups: no backup yet: run `gridwatch db backup`" in result.output
    assert "PROBLEM secret key: GRIDWATCH_SECRET_KEY is not set" in result.output
    assert "2 problem(s) to fix" in result.output


def test_a_healthy_installation_passes_and_a_broken_one_names_each_problem(production: Settings):
    backed_up = CliRunner().invoke(
        main,
        ["db", "backup"],
        env={
            "GRIDWATCH_VAR_DIR": str(production.var_dir),
            "GRIDWATCH_PG_PORT": str(production.pg_port),
            "GRIDWATCH_DATABASE_URL": None,
            "GRIDWATCH_OWNER_DATABASE_URL": None,
            "GRIDWATCH_BACKUP_DIR": None,
        },
    )
    assert backed_up.exit_code == 0, backed_up.output

    healthy = doctor(production)
    assert healthy.exit_code == 0, healthy.output
    for check in ("database", "postgis", "h3", "server role", "clock", "migrations", "secret key", "backups"):
        assert f"ok      {check}: " in healthy.output, check
    assert "ok      backup verify: " in healthy.output
    assert "this installation is fit to run" in healthy.output

    # A function file edited since the last migrate, no secret, and the server as the owner (a
    # superuser), as in a cluster made before the roles were split: no server-database-url.
    with psycopg.connect(production.resolved_owner_url(), autocommit=True) as conn:
        conn.execute("UPDATE schema_functions SET checksum = 'stale' WHERE file = 'grids.sql'")
    server_url_file = production.cluster_dir / "server-database-url"
    server_url_file.rename(server_url_file.with_suffix(".away"))
    try:
        broken = doctor(production, GRIDWATCH_SECRET_KEY=None)
    finally:
        server_url_file.with_suffix(".away").rename(server_url_file)
        migrate(production.resolved_owner_url())
    assert broken.exit_code == 1, broken.output
    assert "PROBLEM migrations: not applied: grids.sql: run `gridwatch db migrate`" in broken.output
    assert "PROBLEM secret key: " in broken.output
    assert "PROBLEM server role: the server connects as a superuser" in broken.output
    assert "3 problem(s) to fix" in broken.output
