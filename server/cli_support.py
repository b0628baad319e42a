"""What the command-line modules share: how a command fails, and the local cluster."""

from __future__ import annotations

import sys

import click

from server.db.backup import ARCHIVE_READY_OPTIONS
from server.db.cluster import Cluster
from server.settings import Settings


def local_cluster(settings: Settings) -> Cluster:
    """The project-local cluster under var/, created archive-ready (server/db/backup.py)."""
    return Cluster(settings.cluster_dir, settings.pg_port, options=ARCHIVE_READY_OPTIONS)


def fail(message: str) -> None:
    click.secho(message, fg="red", err=True)
    sys.exit(1)
