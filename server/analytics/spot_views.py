"""``/api/v1/analytics/hotspots`` and ``/emerging-hotspots``: where incidents cluster beyond
chance, and how that changes over time (docs/analytics.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Literal

from flask import Blueprint, current_app
from pydantic import Field

from server import clock
from server.analytics import emerging, hotspots
from server.analytics.period import Period, add_months, calendar_zone
from server.analytics.views import PeriodQuery
from server.auth import require_user
from server.db import get_db
from server.errors import Forbidden, InvalidInput
from server.geojson import geojson_response
from server.incidents.workflow import STATUSES
from server.openapi import documented
from server.openapi_schemas import geojson_reply
from server.schema import CODE_LIST_PATTERN, Day, parse_query

blueprint = Blueprint("spots", __name__, url_prefix="/api/v1/analytics")

# Spot statistics read the whole county: for the roles that see all of it.
ROLES = ("leader", "operator", "admin")


class SpotQuery(PeriodQuery):
    """What both analyses take: the units, the period and the filters."""

    unit: Literal["grid", "village", "township", "h3"] = Field(
        "grid", description="The units: the finest grids, villages, townships, or H3 cells."
    )
    resolution: int | None = Field(
        None, ge=6, le=9, description="H3 resolution (unit=h3 only; default 8, about 0.7 km² a cell)."
    )
    category: str | None = Field(
        None, pattern=CODE_LIST_PATTERN, description="Category codes, comma-separated."
    )
    status: str | None = Field(
        None, pattern=CODE_LIST_PATTERN, description="Statuses, comma-separated (as in the tiles)."
    )
    alpha: float = Field(0.05, ge=0.001, le=0.1, description="False discovery rate (Benjamini-Hochberg).")


class HotspotQuery(SpotQuery):
    """Parameters of ``GET /api/v1/analytics/hotspots``."""

    from_: Day | None = Field(
        None, alias="from", description="First day (local date); default: 365 days ago."
    )
    to: Day | None = Field(None, description="Day after the period (exclusive); default: tomorrow.")
    measure: Literal["count", "per_100_households"] = Field(
        "count", description="Incidents, or incidents per 100 households (grid units)."
    )
    method: Literal["gi_star", "local_moran"] = Field(
        "gi_star",
        description="Getis-Ord Gi* (hot and cold spots) or Local Moran's I (clusters and outliers).",
    )
    permutations: int = Field(999, ge=99, le=9999, description="Conditional permutations for the p-values.")


class EmergingQuery(SpotQuery):
    """Parameters of ``GET /api/v1/analytics/emerging-hotspots``."""

    from_: Day | None = Field(
        None,
        alias="from",
        description="First day (local date); default: 24 months (52 weeks) before this one.",
    )
    to: Day | None = Field(
        None, description="Day after the period (exclusive); default: this month's (week's) first."
    )
    slice: Literal["month", "week"] = Field("month", description="The time slices; only complete ones count.")


def _units_reply(description: str) -> dict:
    return geojson_reply({"type": "object"}, description)


@blueprint.get("/hotspots")
@documented(
    summary="Hot and cold spots (Getis-Ord Gi*) or clusters and outliers (Local Moran's I) per unit, every"
    " unit of the county, with a false-discovery-rate decision",
    query=HotspotQuery,
    responses={
        200: _units_reply(
            "a FeatureCollection, one feature per unit, with `parameters`, `weights`, `units`, `left_out`,"
            " `computed_at`, `data_version`"
        )
    },
    errors=(403,),
)
def hotspot_units():
    query = _checked(HotspotQuery)
    now = clock.now()
    with get_db().read_connection() as conn:
        zone = calendar_zone(conn)
        tomorrow = now.astimezone(zone).date() + timedelta(days=1)
        request = _request(
            query, now, zone, default_start=(query.to or tomorrow) - timedelta(days=365), default_end=tomorrow
        )
        request = replace(
            request, measure=query.measure, method=query.method, permutations=query.permutations
        )
        body = hotspots.hotspots(conn, request, cache=_cache(), now=now)
    return geojson_response(body)


@blueprint.get("/emerging-hotspots")
@documented(
    summary="Emerging hot and cold spots: Gi* per unit and time slice, the Mann-Kendall trend of its z-scores"
    " and the pattern (new, consecutive, intensifying, …)",
    query=EmergingQuery,
    responses={
        200: _units_reply(
            "a FeatureCollection, one feature per unit with `pattern`, `trend`, `trend_z`, `trend_p` and the"
            " per-slice classes; `slices` lists the slices' first days"
        )
    },
    errors=(403,),
)
def emerging_units():
    query = _checked(EmergingQuery)
    now = clock.now()
    with get_db().read_connection() as conn:
        zone = calendar_zone(conn)
        today = now.astimezone(zone).date()
        if query.slice == "month":
            end = today.replace(day=1)
            start = add_months(query.to or end, -24)
        else:
            end = today - timedelta(days=today.weekday())
            start = (query.to or end) - timedelta(weeks=52)
        request = emerging.EmergingRequest(
            base=_request(query, now, zone, default_start=start, default_end=end), slice=query.slice
        )
        body = emerging.emerging_hotspots(conn, request, cache=_cache(), now=now)
    return geojson_response(body)


def _checked(model):
    user = require_user()
    if user.role not in ROLES:
        raise Forbidden("hotspots are for leaders, operators and admins", field=None)
    query = parse_query(model)
    if query.resolution is not None and query.unit != "h3":
        raise InvalidInput("resolution applies to unit=h3 only", field="resolution")
    unknown = [status for status in (query.status or "").split(",") if status and status not in STATUSES]
    if unknown:
        raise InvalidInput(f"unknown status {unknown[0]!r}", field="status")
    return query


def _request(query: SpotQuery, now: datetime, zone, *, default_start: date, default_end: date):
    period = Period.of(start=query.from_ or default_start, end=query.to or default_end, as_of=now, zone=zone)
    return hotspots.HotspotRequest(
        unit=query.unit,
        resolution=(query.resolution or 8) if query.unit == "h3" else None,
        period=period,
        category=tuple(query.category.split(",")) if query.category else (),
        status=tuple(query.status.split(",")) if query.status else (),
        alpha=query.alpha,
    )


def _cache() -> hotspots.HotspotCache:
    return current_app.extensions.setdefault("gridwatch.hotspot_cache", hotspots.HotspotCache())
