"""Backups and point-in-time restore with a real pgBackRest: a cluster of this module's own
(archiving needs its own settings, so not the session's test cluster), its own repository,
incidents filed through the REST API, and restores started as real clusters beside it."""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from PIL import Image
from server_support import free_port
from workflow_helpers import OWN_POINT

from server.app import create_app
from server.auth.users import issue_token
from server.cli import main
from server.db import backup
from server.db.cluster import Cluster
from server.db.migrate import migrate
from server.settings import PROJECT_ROOT, Settings
from server.tiles.changes import fold_pending

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def installation():
    """Settings of a local cluster made before backups existed: archive_mode is off."""
    parent = PROJECT_ROOT / "var" / "test"
    parent.mkdir(parents=True, exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="backup-", dir=parent))
    settings = Settings(var_dir=var_dir, pg_port=free_port(), secret_key="test-secret", pool_min_size=1)
    cluster = Cluster(settings.cluster_dir, settings.pg_port, options={"fsync": "off"})
    try:
        cluster.up()
        migrate(cluster.url)
        with psycopg.connect(cluster.url) as conn:
            conn.execute((FIXTURES / "small_county.sql").read_text())
            fold_pending(conn)
        yield settings
    finally:
        for restored in (var_dir / "restores").glob("*"):
            Cluster(restored, 0).stop()
        cluster.destroy()
        shutil.rmtree(var_dir, ignore_errors=True)


def gridwatch(settings: Settings, *args: str) -> str:
    """Run the command line against the installation; its output, after checking it succeeded."""
    result = invoke(settings, *args)
    assert result.exit_code == 0, result.output
    return result.output


def invoke(settings: Settings, *args: str):
    env = {
        "GRIDWATCH_VAR_DIR": str(settings.var_dir),
        "GRIDWATCH_PG_PORT": str(settings.pg_port),
        "GRIDWATCH_DATABASE_URL": None,
        "GRIDWATCH_OWNER_DATABASE_URL": None,
        "GRIDWATCH_BACKUP_DIR": None,
        "GRIDWATCH_BACKUP_PG_DATA_DIR": None,
    }
    return CliRunner().invoke(main, args, env=env)


@pytest.fixture(scope="module")
def first_backup(installation: Settings) -> str:
    output = gridwatch(installation, "db", "backup")
    # pgBackRest keeps a backup's stop time in whole seconds and restores only to a time after
    # it (a full run failed with "no backup set with stop time less than" a target 0.7 s past
    # the backup's end): what the tests file comes a second and a half later.
    time.sleep(1.5)
    return output


@pytest.fixture(scope="module")
def app(installation: Settings):
    application = create_app(installation)
    yield application
    application.extensions["gridwatch.db"].close()


@pytest.fixture(scope="module")
def owner(installation: Settings):
    with psycopg.connect(installation.resolved_owner_url(), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def headers(owner) -> dict[str, str]:
    user_id = owner.execute("SELECT id FROM users WHERE username = 'inspector1'").fetchone()[0]
    return {"Authorization": f"Bearer {issue_token(owner, user_id=user_id)}"}


def file_incident(client, headers, description: str, photo: bytes | None = None) -> int:
    fields = {"lon": OWN_POINT[0], "lat": OWN_POINT[1], "category": "sanitation", "description": description}
    if photo is None:
        response = client.post("/api/v1/incidents", json=fields, headers=headers)
    else:
        data = {
            **{key: str(value) for key, value in fields.items()},
            "photos": [(io.BytesIO(photo), "p.png")],
        }
        response = client.post(
            "/api/v1/incidents", data=data, content_type="multipart/form-data", headers=headers
        )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def database_now(owner) -> datetime:
    return owner.execute("SELECT clock_timestamp()").fetchone()[0]


def archive_everything(owner) -> None:
    """Close the current WAL segment and wait until the archiver has pushed it."""
    segment = owner.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
    deadline = time.monotonic() + 30
    while True:
        archived, failures = owner.execute(
            "SELECT last_archived_wal, failed_count FROM pg_stat_archiver"
        ).fetchone()
        assert failures == 0
        if archived is not None and archived >= segment:
            return
        assert time.monotonic() < deadline, f"{segment} was not archived within 30 s"
        time.sleep(0.1)


def restore(settings: Settings, target: datetime, name: str) -> str:
    """`gridwatch db restore`; the restored database's URL, from the last line of its output."""
    into = settings.var_dir / "restores" / name
    output = gridwatch(settings, "db", "restore", "--to", target.isoformat(), "--into", str(into))
    return output.strip().splitlines()[-1]


def test_point_in_time_restore_has_the_first_incident_and_not_the_second(
    installation, first_backup, app, owner, headers
):
    # The cluster predates backups: the first one turned archiving on with one restart.
    assert "restarted the cluster once" in first_backup and "(full)" in first_backup
    client = app.test_client()
    first = file_incident(client, headers, "before the accident")
    between = database_now(owner)
    time.sleep(2)
    second = file_incident(client, headers, "after the accident")
    archive_everything(owner)

    url = restore(installation, between, "between")
    assert url.startswith("postgresql://") and f":{installation.pg_port}/" not in url
    with psycopg.connect(url) as restored:
        found = restored.execute("SELECT id FROM incidents WHERE id IN (%s, %s)", [first, second]).fetchall()
        assert found == [(first,)]
        # Not archiving: the copy never pushes WAL into the production repository.
        assert restored.execute("SHOW archive_mode").fetchone()[0] == "off"
        assert restored.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
    # The live cluster goes on, untouched.
    assert (
        owner.execute("SELECT count(*) FROM incidents WHERE id IN (%s, %s)", [first, second]).fetchone()[0]
        == 2
    )


def test_photos_come_back_byte_for_byte(installation, first_backup, app, owner, headers):
    png = io.BytesIO()
    Image.effect_noise((48, 32), 60).convert("RGB").save(png, "PNG")
    incident = file_incident(app.test_client(), headers, "photo of the dump", photo=png.getvalue())
    stored = owner.execute(
        "SELECT content FROM incident_photos WHERE incident_id = %s", [incident]
    ).fetchone()[0]
    gridwatch(installation, "db", "backup")
    after = database_now(owner)
    owner.execute("UPDATE incident_photos SET content = 'overwritten' WHERE incident_id = %s", [incident])
    archive_everything(owner)

    url = restore(installation, after, "photos")
    with psycopg.connect(url) as restored:
        content, sha256 = restored.execute(
            "SELECT content, sha256 FROM incident_photos WHERE incident_id = %s", [incident]
        ).fetchone()
    assert content == stored and sha256 == hashlib.sha256(stored).digest()


def test_restore_refuses_a_used_directory_the_live_cluster_and_a_naive_time(installation, first_backup):
    used = installation.var_dir / "used"
    used.mkdir()
    (used / "notes.txt").write_text("keep me")
    moment = "2030-01-01T12:00:00+08:00"
    refusals = {
        used: "is not empty",
        installation.cluster_dir / "data": "holds the live cluster",
        installation.cluster_dir: "holds the live cluster",
    }
    for into, message in refusals.items():
        result = invoke(installation, "db", "restore", "--to", moment, "--into", str(into))
        assert result.exit_code == 1 and message in result.output, result.output
    assert (used / "notes.txt").read_text() == "keep me"
    naive = invoke(installation, "db", "restore", "--to", "2030-01-01T12:00:00", "--into", str(used / "x"))
    assert naive.exit_code == 2 and "add a time zone" in naive.output


def test_health_reports_the_age_of_the_last_backup(installation, first_backup, app):
    newest = backup.list_backups(backup.backup_setup(installation))[-1]
    document = app.test_client().get("/health").get_json()
    assert document["backup"]["last_at"] == newest.stopped_at.isoformat()
    assert 0 <= document["backup"]["age_seconds"] < 300


def test_an_incremental_backup_after_the_full_one_and_verify(installation, first_backup):
    output = gridwatch(installation, "db", "backup")
    assert "(incr)" in output
    listing = gridwatch(installation, "db", "backups")
    kinds = [line.split()[1] for line in listing.splitlines()[1:-1]]
    assert kinds[0] == "full" and kinds[-1] == "incr"
    setup = backup.backup_setup(installation)
    assert backup.verify(setup) == backup.CheckResult(ok=True)
    assert backup.last_backup_age(installation).ok

    # Damage one file of the newest backup: verify must say so (pgBackRest 2.45 exits 0).
    newest = backup.list_backups(setup)[-1]
    damaged = next((setup.repository / "backup" / backup.STANZA / newest.label).rglob("*.zst"))
    original = damaged.read_bytes()
    try:
        damaged.write_bytes(original[:-8] + bytes(8))
        verdict = backup.verify(setup)
        assert not verdict.ok and "status: error" in verdict.problem
    finally:
        damaged.write_bytes(original)
