"""Where browsers and API clients find the change feed."""

from __future__ import annotations

from urllib.parse import urlsplit

from server.settings import Settings

EVENTS_PATH = "/api/v1/events"


def feed_url(settings: Settings, *, host: str, scheme: str) -> str:
    """The feed's URL for a client that reached gridwatch at ``host`` (a Host header): the
    configured ``events_url``, else the same host on the feed's own port."""
    if settings.events_url:
        return settings.events_url
    hostname = urlsplit(f"//{host}").hostname or "127.0.0.1"
    if ":" in hostname:  # IPv6
        hostname = f"[{hostname}]"
    return f"{scheme}://{hostname}:{settings.feed_port}{EVENTS_PATH}"


def same_host(origin: str, host: str) -> bool:
    """Whether a page at ``origin`` was served by the host the feed was reached at (any port):
    pages come from the workers' port, the feed answers on its own."""
    return urlsplit(origin).hostname == urlsplit(f"//{host}").hostname
