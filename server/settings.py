"""One typed settings object, read from ``GRIDWATCH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDWATCH_", extra="ignore")

    # An existing PostGIS (managed service, container): the server's connection, best as a role
    # that can read and write rows and nothing more (server/db/roles.py; `gridwatch doctor`
    # refuses a superuser). When unset, the project-local cluster under ``var_dir`` is used and
    # its URLs are read from the files it wrote.
    database_url: str | None = None
    # The owner's connection, for migrations and the command line's loads and imports.
    # Default: `database_url` (one role for everything, as before the split).
    owner_database_url: str | None = None
    var_dir: Path = PROJECT_ROOT / "var"
    pg_port: int = Field(55432, ge=1024, le=65535)
    # Each worker opens (and warms, `warm_connections`) this many connections when it starts, so
    # a restart's first tiles need not wait for a new session; more are opened on demand.
    pool_min_size: int = Field(4, ge=0)
    pool_max_size: int = Field(8, ge=1)
    warm_connections: bool = True
    statement_timeout_ms: int = Field(30_000, ge=0)
    # Backups with pgBackRest (server/db/backup.py, docs/operations.md): its repository,
    # configuration and log live here; default `var_dir`/backup. Another disk than the data's
    # in production, or the backup dies with the database.
    backup_dir: Path | None = None
    # Full backups kept; older ones, and the WAL only they need, are expired after each backup.
    # With the weekly full of deploy/systemd, 4 keep about four weeks of point-in-time restore.
    backup_retention_full: int = Field(4, ge=1, le=100)
    # The data directory of another cluster on this machine to back up, e.g. Debian's system
    # cluster /var/lib/postgresql/15/main (GRIDWATCH_DATABASE_URL says its port). Without it,
    # only the local cluster under `var_dir` is backed up.
    backup_pg_data_dir: Path | None = None
    # Streaming standbys (comma-separated URLs) that take the read load: tiles, lists and
    # analytics read there when the standby has replayed every change this process knows of
    # (waiting up to `replica_wait_ms` for it), else from the primary. A standby that is down is
    # skipped for `replica_retry_s`; one more than `replica_max_lag_s` behind is skipped until it
    # catches up (docs/operations.md, "Standby").
    replica_urls: Annotated[list[str], NoDecode] = []
    replica_wait_ms: int = Field(200, ge=0, le=10_000)
    replica_max_lag_s: float = Field(30.0, gt=0)
    replica_retry_s: float = Field(5.0, gt=0)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(2, ge=1)

    # The change feed's own asyncio server (server/feed), beside the workers: an open stream
    # costs it memory, not a thread. Its port defaults to `port` + 1. `events_url` is where
    # browsers reach it when that is not http(s)://<this host>:<events_port>/api/v1/events,
    # e.g. "/api/v1/events" behind a reverse proxy that routes that path to it (docs/operations).
    events_port: int | None = Field(None, ge=1, le=65535)
    events_url: str | None = Field(None, pattern=r"^(https?://|/)")
    feed_streams_per_user: int = Field(32, ge=1)
    feed_max_streams: int = Field(10_000, ge=1)
    feed_heartbeat_s: float = Field(15.0, gt=0)
    # Origins (scheme://host:port) besides this host's own that pages may open the feed from.
    feed_allowed_origins: list[str] = []

    secret_key: str | None = None
    # A login session ends this long after the last request that refreshed its cookie.
    session_hours: float = Field(12.0, gt=0)
    # Reverse proxies in front of gridwatch (nginx: 1) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed: the client's address (login throttling, sessions) and the
    # scheme. 0 (direct, the default) believes none, since a client could forge them.
    trusted_proxies: int = Field(0, ge=0, le=5)
    # Session cookies only over HTTPS (set it when the site is served over HTTPS).
    secure_cookies: bool = False
    default_language: str = Field("zh", pattern="^(zh|en)$")
    # The dashboard map's raster basemap: an XYZ template such as
    # "https://t0.tianditu.gov.cn/vec_w/wmts?...&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=KEY" or the
    # county's own tile server. None (intranets, tests): gridwatch's own outlines and names only.
    basemap_url: str | None = Field(None, pattern=r"^(https?://|/).*\{z\}.*")
    basemap_attribution: str = ""
    # The basemap's coordinate system: wgs84 (also CGCS2000, e.g. Tianditu) or gcj02 (Gaode,
    # Tencent), over which gridwatch's WGS84 layers are drawn shifted to match.
    basemap_crs: str = Field("wgs84", pattern="^(wgs84|gcj02)$")
    # The leaders' pages keep the figures they computed this long per worker (the bulletin, the
    # tables, the monthly trend); the API computes afresh. 0 computes every time.
    analytics_keep_seconds: float = Field(300.0, ge=0)
    # The in-process vector tile cache of each worker process (server/tiles/cache.py).
    tile_cache_mb: int = Field(256, ge=1)
    # `gridwatch serve` (and so `make run`) also runs `gridwatch demo live` beside the servers,
    # at this speed: the demo county keeps reporting and moving cases (docs/demo.md). Demo only.
    demo_live: bool = False
    demo_live_speed: float = Field(1.0, gt=0)

    @field_validator("replica_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @property
    def feed_port(self) -> int:
        return self.events_port or self.port + 1

    @property
    def cluster_dir(self) -> Path:
        return self.var_dir / "pg"

    @property
    def backup_path(self) -> Path:
        return self.backup_dir or self.var_dir / "backup"

    def resolved_database_url(self) -> str:
        """The server's URL: the explicit one, else the local cluster's server role's (the
        owner's for a cluster made before the roles were split)."""
        if self.database_url:
            return self.database_url
        return self._local_url("server-database-url", "database-url")

    def resolved_owner_url(self) -> str:
        """The owner's URL, for migrations and the command line."""
        if self.owner_database_url or self.database_url:
            return self.owner_database_url or self.database_url
        return self._local_url("database-url")

    def _local_url(self, *names: str) -> str:
        for name in names:
            url_file = self.cluster_dir / name
            if url_file.exists():
                return url_file.read_text().strip()
        from server.errors import DatabaseUnavailable

        raise DatabaseUnavailable(
            "no database configured: run `gridwatch db up` or set GRIDWATCH_DATABASE_URL"
        )
