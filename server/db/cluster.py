"""A project-local PostgreSQL + PostGIS cluster under ``var/``.

``make run`` and the test suite use the same code: find Debian's PostgreSQL binaries,
``initdb`` once, start the server on 127.0.0.1 only (no Unix socket, so long paths do not
matter), and create the application database. As root, the server runs as the unprivileged
``postgres`` user that Debian's packages create; PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEBIAN_PACKAGES = ["postgresql-15", "postgresql-15-postgis-3", "postgresql-contrib"]
INSTALL_HINT = "apt-get install -y " + " ".join(DEBIAN_PACKAGES)
SERVICE_USER = "postgres"
DB_ROLE = "gridwatch"


class ClusterError(RuntimeError):
    """The local cluster could not be found, created or started."""


def run_as_service_user(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a PostgreSQL tool (or pgBackRest) as the server's OS user: ``postgres`` when we are
    root, else ourselves. Output is captured as text."""
    as_root = os.geteuid() == 0
    return subprocess.run(
        args,
        user=SERVICE_USER if as_root else None,
        group=SERVICE_USER if as_root else None,
        capture_output=True,
        text=True,
        **kwargs,
    )


def give_to_service_user(path: Path) -> None:
    """As root, hand ``path`` to the service user and make its ancestors traversable."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(SERVICE_USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for ancestor in path.resolve().parents:
        mode = ancestor.stat().st_mode
        if not mode & 0o001:
            os.chmod(ancestor, mode | 0o001)


def find_bindir() -> Path:
    """The bin directory of the newest PostgreSQL that has PostGIS installed."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for bindir in candidates:
        version = bindir.parent.name
        control = Path(f"/usr/share/postgresql/{version}/extension/postgis.control")
        if (bindir / "postgres").exists() and control.exists():
            return bindir
    raise ClusterError(
        "PostgreSQL with PostGIS is not installed. Install it with:\n"
        f"    sudo {INSTALL_HINT}\n"
        "or set GRIDWATCH_DATABASE_URL to an existing PostGIS database."
    )


@dataclass
class Cluster:
    """One cluster: ``base_dir/data`` holds the data, ``base_dir/database-url`` how to reach it."""

    base_dir: Path
    port: int
    database: str = "gridwatch"
    # Extra server settings; the test suite turns durability off for speed.
    options: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "log" / "postgresql.log"

    @property
    def url_file(self) -> Path:
        return self.base_dir / "database-url"

    # -- process control -------------------------------------------------------------

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.is_initialized():
            return False
        bindir = find_bindir()
        return (
            run_as_service_user([str(bindir / "pg_ctl"), "status", "-D", str(self.data_dir)]).returncode == 0
        )

    def init(self) -> None:
        bindir = find_bindir()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.data_dir, self.log_file.parent):
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
            give_to_service_user(directory)
        password = secrets.token_urlsafe(24)
        pwfile = self.base_dir / ".initpw"  # initdb wants an empty data directory
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        give_to_service_user(pwfile)
        try:
            result = run_as_service_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    DB_ROLE,
                    "--pwfile",
                    str(pwfile),
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ClusterError(f"initdb failed:\n{result.stderr.strip()}")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "max_connections": "200",
            "shared_buffers": "'512MB'",
            "work_mem": "'32MB'",
            "maintenance_work_mem": "'512MB'",
            "max_wal_size": "'4GB'",
            "jit": "off",
            # A standby's replication slot (server/db/replication.py) keeps WAL the standby has
            # not received; one gone for good must not fill the disk.
            "max_slot_wal_keep_size": "'10GB'",
        } | self.options
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# gridwatch local cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self.url_file.write_text(f"postgresql://{DB_ROLE}:{password}@127.0.0.1:{self.port}/{self.database}\n")
        os.chmod(self.url_file, 0o600)

    def start(self) -> None:
        bindir = find_bindir()
        if self.is_running():
            return
        if _port_in_use(self.port):
            raise ClusterError(
                f"port {self.port} on 127.0.0.1 is taken by another program; "
                "set GRIDWATCH_PG_PORT to a free port"
            )
        result = run_as_service_user(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
            ]
        )
        if result.returncode != 0:
            log_tail = ""
            if self.log_file.exists():
                log_tail = "\n".join(self.log_file.read_text().splitlines()[-15:])
            raise ClusterError(f"PostgreSQL did not start:\n{result.stderr.strip()}\n{log_tail}")

    def stop(self) -> None:
        if not self.is_running():
            return
        bindir = find_bindir()
        result = run_as_service_user(
            [str(bindir / "pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(self.data_dir)]
        )
        if result.returncode != 0:
            raise ClusterError(f"PostgreSQL did not stop:\n{result.stderr.strip()}")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- databases ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.url_file.read_text().strip()

    def url_for(self, database: str) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + database

    def ensure_database(self, database: str | None = None) -> bool:
        """Create the database if missing. Returns True when it was created."""
        name = database or self.database
        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True

    def up(self) -> bool:
        """Initialise if needed, start, create the database. True when the database is new."""
        if not self.is_initialized():
            self.init()
        self.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                return self.ensure_database()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def url_with_port(url: str, port: int) -> str:
    """``url`` pointing at another port of the same host (a standby, a restored copy)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    return urlunsplit(parts._replace(netloc=f"{netloc}:{port}"))
