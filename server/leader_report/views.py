"""``GET /api/v1/analytics/report``: the monthly leader report as a file download."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, current_app
from pydantic import Field

from server import clock
from server.analytics.spot_views import ROLES
from server.analytics.views import PeriodQuery
from server.auth import require_user
from server.db import get_db
from server.errors import Forbidden
from server.leader_report.service import make_report
from server.openapi import documented
from server.schema import CODE_PATTERN, Day, parse_query

blueprint = Blueprint("leader_report", __name__, url_prefix="/api/v1/analytics")


class ReportQuery(PeriodQuery):
    """Parameters of ``GET /api/v1/analytics/report``."""

    from_: Day | None = Field(
        None, alias="from", description="First day (local date); default: last calendar month's first."
    )
    to: Day | None = Field(None, description="Day after the period (exclusive); default: this month's first.")
    grid: str | None = Field(
        None, pattern=CODE_PATTERN, description="A township's or village's code: its own report."
    )
    lang: Literal["zh", "en"] | None = Field(None, description="Language; default: the server's default.")


@blueprint.get("/report")
@documented(
    summary="The monthly leader report: one self-contained HTML file (maps, tables, charts) that opens"
    " without a network (docs/leader-report.md)",
    query=ReportQuery,
    responses={
        200: {
            "description": "the report as a download",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
    errors=(403, 404),
)
def leader_report():
    user = require_user()
    if user.role not in ROLES:
        raise Forbidden("the report is for leaders, operators and admins", field=None)
    query = parse_query(ReportQuery)
    settings = current_app.extensions["gridwatch.settings"]
    with get_db().read_connection() as conn:
        html, name = make_report(
            conn,
            start=query.from_,
            end=query.to,
            area=query.grid,
            lang=query.lang or settings.default_language,
            made_by=user.display_name or user.username,
            settings=settings,
            now=clock.now(),
        )
    return Response(
        html,
        mimetype="text/html",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
