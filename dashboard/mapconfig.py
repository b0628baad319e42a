"""What the live map needs before it can draw, served as JSON so that ``assets/livemap.js``
fetches it as soon as the page's scripts run, in parallel with Dash's own start-up, and creates
the map the moment Dash has rendered its container (docs/dashboard.md, "First render"):

``GET /dashboard/map/config?lang=&incident=``: the style (with one label point per township,
village and grid, so place names are laid out with the first tiles instead of after every grid
tile has arrived), the county's bounds, the periods, the tooltip labels and the incident a link
asks to open; ``null`` when nobody is signed in.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify, request

from dashboard import card, mapstyle, reference
from dashboard.filters import PERIODS, resolve_period
from dashboard.i18n import resolve_language, translate
from server import clock
from server.auth import User, current_user
from server.db import get_db
from server.errors import GridwatchError
from server.feed.urls import feed_url
from server.incidents.workflow import STATUSES

CONFIG_PATH = "/dashboard/map/config"
# Where the map opens when there are no grids yet (Hongya, the demo county).
FALLBACK_BOUNDS = [[102.9, 29.5], [103.6, 30.0]]
TOOLTIP_KEYS = ("open", "overdue", "member", "no_member", "incidents", "age", "hours")


def county_bounds(conn) -> list:
    row = conn.execute(
        """SELECT ST_XMin(e) AS w, ST_YMin(e) AS s, ST_XMax(e) AS e, ST_YMax(e) AS n
             FROM (SELECT ST_Extent(geom) AS e FROM grids WHERE level = 'county') AS county"""
    ).fetchone()
    if row["w"] is None:
        return FALLBACK_BOUNDS
    return [[row["w"], row["s"]], [row["e"], row["n"]]]


def focus(conn, *, user: User, incident: str | None) -> dict | None:
    """The incident a link asks to open (``?incident=ID``), if the viewer may see it."""
    if not incident or not (incident.isascii() and incident.isdigit()) or len(incident) > 18:
        return None
    try:
        found = card.load(conn, user=user, incident_id=int(incident), now=clock.now())
    except GridwatchError:
        return None
    return {"id": found["id"], "lon": found["lon"], "lat": found["lat"]}


def map_config(conn, *, language: str, user: User, incident: str | None) -> dict:
    settings = current_app.extensions["gridwatch.settings"]
    basemap = (
        mapstyle.Basemap(settings.basemap_url, settings.basemap_attribution, settings.basemap_crs)
        if settings.basemap_url
        else None
    )
    bounds = county_bounds(conn)
    centre = ((bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2)
    now = clock.now()
    periods = {key: period.tile_param() for key in PERIODS if (period := resolve_period(key, now))}
    categories = reference.categories(conn)
    return {
        "style": mapstyle.build_style(
            language=language, basemap=basemap, centre=centre, labels=label_points(conn)
        ),
        "shift": mapstyle.gcj02_shift(*centre) if basemap and basemap.crs == "gcj02" else None,
        "bounds": bounds,
        "periods": periods,
        "switches": mapstyle.SWITCHES,
        "defaultSwitches": list(mapstyle.DEFAULT_SWITCHES),
        "labels": {key: translate(f"tooltip.{key}", language) for key in TOOLTIP_KEYS},
        "categoryLabels": {row["code"]: reference.name_in(row, language) for row in categories},
        "statusLabels": {status: translate(f"status.{status}", language) for status in STATUSES},
        "focus": focus(conn, user=user, incident=incident),
        # The change feed runs on its own port (server/feed), or behind the proxy's same path;
        # the tabs of one user share one stream (server/feed/static/worker.js).
        "events": feed_url(settings, host=request.host, scheme=request.scheme),
        "viewer": user.id,
    }


def label_points(conn) -> dict:
    """A point inside every township, village and grid with its name and level (GeoJSON)."""
    rows = conn.execute(
        """SELECT name_zh AS name, level, ST_X(p) AS lon, ST_Y(p) AS lat
             FROM (SELECT name_zh, level, ST_PointOnSurface(geom) AS p
                     FROM grids WHERE level <> 'county') AS points"""
    ).fetchall()
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": row["name"], "level": row["level"]},
                "geometry": {"type": "Point", "coordinates": [round(row["lon"], 6), round(row["lat"], 6)]},
            }
            for row in rows
        ],
    }


def _config_view():
    user = current_user()
    if user is None:
        # Not an error: the page asks before it knows who is signed in, and shows the login link.
        return jsonify(None)
    with get_db().connection() as conn:
        config = map_config(
            conn,
            language=resolve_language(request.args.get("lang")),
            user=user,
            incident=request.args.get("incident"),
        )
    response = jsonify(config)
    response.headers["Cache-Control"] = "no-store"  # per user, and "this month" moves on
    return response


def register(server: Flask) -> None:
    server.add_url_rule(CONFIG_PATH, "dashboard_map_config", _config_view)
