"""Two roles: the owner, which runs migrations and the command line's loads and imports, and the
server's, which can read and write rows and nothing else (no DDL, no superuser), so a flaw in a
request handler cannot drop a table or read the server's files through PostgreSQL.

The owner's default privileges give the server's role each table, sequence and schema the owner
creates later, so a migration needs no grants of its own; ``grant_server_role`` also grants what
exists already (a database upgraded from before the split).
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from server.db.cluster import Cluster

SERVER_ROLE = "gridwatch_app"
SCHEMAS = ("public", "tiles")


def url_as(url: str, role: str, password: str) -> str:
    """``url`` with another role and password."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"))


def create_server_role(owner_url: str, role: str = SERVER_ROLE, password: str | None = None) -> str:
    """Create the server's login role (or give it a new password) and return its password."""
    password = password or secrets.token_urlsafe(24)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
        conn.execute(
            sql.SQL("{} {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {}").format(
                verb, sql.Identifier(role), sql.Literal(password)
            )
        )
    return password


def grant_server_role(conn: psycopg.Connection, role: str = SERVER_ROLE) -> None:
    """Rows of every table, every sequence, and the same for what the owner creates later."""
    grantee = sql.Identifier(role)
    for schema in SCHEMAS:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
        if not exists:
            continue
        name = sql.Identifier(schema)
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(name, grantee))
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
                name, grantee
            )
        )
        conn.execute(
            sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(name, grantee)
        )
    for grant in (
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}",
        "GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {}",
        "GRANT USAGE ON SCHEMAS TO {}",
    ):
        conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES " + grant).format(grantee))


def role_exists(conn: psycopg.Connection, role: str = SERVER_ROLE) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is not None


def ensure_local_server_role(cluster: Cluster) -> None:
    """The local cluster's server role, with its URL beside the owner's (mode 0600)."""
    url_file = cluster.base_dir / "server-database-url"
    if url_file.exists():
        return
    password = create_server_role(cluster.url)
    url_file.write_text(url_as(cluster.url, SERVER_ROLE, password) + "\n")
    os.chmod(url_file, 0o600)
