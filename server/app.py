"""The application factory: a readable list of the parts that make gridwatch."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from server import auth, db, errors, health, security_headers, tiles, vendor
from server.admin import views as admin_views
from server.analytics import spot_views
from server.analytics import views as analytics_views
from server.feed import views as feed_views
from server.grids import views as grid_views
from server.incidents import views as incident_views
from server.leader_report import views as leader_report_views
from server.open311 import views as open311_views
from server.openapi import blueprint as openapi_blueprint
from server.patrols import views as patrol_views
from server.report import views as report_views
from server.secret_key import resolve_secret_key
from server.settings import Settings
from server.tiles.warm import warm

# The largest request body accepted (photos included); deploy/nginx refuses larger ones itself.
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=resolve_secret_key(settings),
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        JSON_SORT_KEYS=False,
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["gridwatch.settings"] = settings
    if settings.trusted_proxies:
        # The client's address and scheme as the trusted proxies saw them (each appends one).
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)

    errors.register_error_handlers(app)
    security_headers.init_app(app)
    # Pooled connections come warm for every tile layer (server/tiles/warm.py).
    db.init_app(app, settings, configure=warm if settings.warm_connections else None)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(vendor.blueprint)
    auth.init_app(app)
    app.register_blueprint(tiles.blueprint)
    app.register_blueprint(feed_views.blueprint)
    app.register_blueprint(grid_views.blueprint)
    app.register_blueprint(incident_views.blueprint)
    app.register_blueprint(admin_views.blueprint)
    app.register_blueprint(analytics_views.blueprint)
    app.register_blueprint(spot_views.blueprint)
    app.register_blueprint(leader_report_views.blueprint)
    app.register_blueprint(patrol_views.blueprint)
    app.register_blueprint(openapi_blueprint)
    app.register_blueprint(open311_views.blueprint)
    app.register_blueprint(report_views.blueprint)

    from dashboard import init_dashboard

    init_dashboard(app)
    return app
