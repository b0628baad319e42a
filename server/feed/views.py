"""The workers' side of the change feed: where it is (``/api/v1/events`` answers with a redirect
to the feed's own server) and the SharedWorker script that browsers' tabs share it through."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, redirect, request, send_from_directory

from server.feed.urls import EVENTS_PATH, feed_url

STATIC = Path(__file__).parent / "static"
blueprint = Blueprint("feed", __name__)


@blueprint.get(EVENTS_PATH)
def events():
    """The change feed runs in its own asyncio server (server/feed), where an open stream costs
    memory, not one of these worker threads; this answers where it is."""
    settings = current_app.extensions["gridwatch.settings"]
    target = feed_url(settings, host=request.host, scheme=request.scheme)
    query = request.query_string.decode("ascii", "replace")
    return redirect(target + ("?" + query if query else ""), code=307)


@blueprint.get("/feed/worker.js")
def worker():
    # Same origin as the pages (a SharedWorker must be); revalidated, so an upgrade is never stale.
    return send_from_directory(STATIC, "worker.js", mimetype="text/javascript")
