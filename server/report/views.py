"""``/report``: the inspector's phone page (mobile-first, works offline).

The page is static HTML + JS that talks to the REST API (``/api/v1``) like any other client; this
blueprint only serves it, its assets and its service worker. How the offline queue works is in
docs/report-page.md.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, send_from_directory

blueprint = Blueprint(
    "report",
    __name__,
    static_folder="static",
    static_url_path="/report/static",
    template_folder="templates",
)

# The worker lives under /report/ but must control the page at /report itself (one level up).
SERVICE_WORKER_SCOPE = "/report"


@blueprint.get("/report")
def report_page():
    settings = current_app.extensions["gridwatch.settings"]
    response = current_app.make_response(
        render_template("report.html", default_language=settings.default_language)
    )
    # The service worker keeps its own copy for offline use; the browser cache need not.
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/report/sw.js")
def service_worker():
    response = send_from_directory(blueprint.static_folder, "sw.js", mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = SERVICE_WORKER_SCOPE
    # Browsers check for a new worker on every visit only if the script itself is never cached.
    response.headers["Cache-Control"] = "no-cache"
    return response
