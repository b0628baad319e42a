"""A streaming standby of a local cluster, made with PostgreSQL's own ``pg_basebackup``.

``pg_basebackup --write-recovery-conf`` copies the primary's data directory over a replication
connection and leaves ``standby.signal`` and ``primary_conninfo`` behind, so the copy starts as
a hot standby that streams the primary's WAL and answers reads. A physical replication slot
(named after the standby's port) keeps the WAL the standby has not received yet, even across a
restart of the standby; the primary's ``max_slot_wal_keep_size`` (server/db/cluster.py) bounds
what a standby that is gone for good can hold back, and `gridwatch doctor` names an inactive
slot. Promotion when the primary is lost: docs/operations.md, "Standby".
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from server.db.cluster import (
    Cluster,
    ClusterError,
    find_bindir,
    give_to_service_user,
    run_as_service_user,
    url_with_port,
)


def slot_name(port: int) -> str:
    return f"gridwatch_standby_{port}"


def create_standby(primary_url: str, *, into: Path, port: int) -> Cluster:
    """Copy the primary at ``primary_url`` into ``into/data``, start it on ``port`` as a
    streaming standby, and return it (its database URL: ``cluster.url``). ``into`` must be new
    or empty."""
    if into.exists() and any(into.iterdir()):
        raise ClusterError(f"{into} is not empty: a standby is made in a new directory")
    standby = Cluster(into, port)
    bindir = find_bindir()
    for directory in (standby.base_dir, standby.data_dir, standby.log_file.parent):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        give_to_service_user(directory)
    slot = slot_name(port)
    with psycopg.connect(primary_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [slot]).fetchone()
        if exists:
            raise ClusterError(
                f"the primary already has a replication slot {slot}: drop it first "
                f"(SELECT pg_drop_replication_slot('{slot}')) if its standby is gone"
            )
    parts = urlsplit(primary_url)
    conninfo = psycopg.conninfo.make_conninfo(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        application_name=f"standby_{port}",
    )
    result = run_as_service_user(
        [
            str(bindir / "pg_basebackup"),
            "--dbname",
            conninfo,
            "--pgdata",
            str(standby.data_dir),
            "--wal-method=stream",
            "--write-recovery-conf",
            "--create-slot",
            "--slot",
            slot,
            "--checkpoint=fast",
            "--no-password",
        ]
    )
    if result.returncode != 0:
        raise ClusterError(f"pg_basebackup failed:\n{result.stderr.strip()}")
    # postgresql.auto.conf overrides the copied postgresql.conf: the standby's own port, and it
    # never pushes WAL into the primary's backup repository (it would as the same stanza).
    with open(standby.data_dir / "postgresql.auto.conf", "a") as conf:
        conf.write(f"\n# gridwatch standby\nport = {port}\narchive_mode = off\n")
    standby.url_file.write_text(url_with_port(primary_url, port) + "\n")
    os.chmod(standby.url_file, 0o600)
    standby.start()
    return standby
