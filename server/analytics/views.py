"""``/api/v1/analytics/…``: the leaders' indicators as JSON, CSV or XLSX."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from flask import Blueprint, Response, jsonify
from pydantic import Field, field_validator

from layers.catalog import LAYERS
from server import clock
from server.analytics import coverage, export
from server.analytics.period import Period, calendar_zone
from server.analytics.response import COUNTS, INDICATORS, Selection, response_rows, with_comparison
from server.auth import require_user
from server.auth.scope import scope_of
from server.db import get_db
from server.geojson import geojson_response
from server.openapi import documented
from server.openapi_schemas import geojson_reply
from server.schema import CODE_LIST_PATTERN, CODE_PATTERN, Day, QueryModel, parse_query

blueprint = Blueprint("analytics", __name__, url_prefix="/api/v1/analytics")


class PeriodQuery(QueryModel):
    """A query with a period (`from`, `to`): dates this century."""

    @field_validator("from_", "to", check_fields=False)
    @classmethod
    def _plausible_day(cls, value: date | None) -> date | None:
        if value is not None and not 2000 <= value.year <= 2099:
            raise ValueError("a date between 2000 and 2099")
        return value


class ResponseQuery(PeriodQuery):
    """Parameters of ``GET /api/v1/analytics/response``."""

    by: Literal["grid", "village", "township", "department", "category"] = Field(
        "township", description="The unit of each row."
    )
    from_: Day | None = Field(
        None, alias="from", description="First day of the period (local date); default: this month's first."
    )
    to: Day | None = Field(
        None, description="Day after the period (exclusive); default: a month after `from`."
    )
    as_of: datetime | None = Field(
        None, description="The moment the figures are seen at (ISO 8601); default: now."
    )
    category: str | None = Field(
        None, pattern=CODE_LIST_PATTERN, description="Category codes, comma-separated."
    )
    parent: str | None = Field(
        None, pattern=CODE_PATTERN, description="A grid code: only units inside it (drill down)."
    )
    compare: Literal["previous", "last_year"] | None = Field(
        None, description="Add each figure for the previous period or a year earlier, and the change."
    )
    format: Literal["json", "csv", "xlsx"] = Field("json", description="csv and xlsx open in Excel/WPS.")
    lang: Literal["zh", "en"] = Field("zh", description="Language of CSV/XLSX headers and names.")

    @field_validator("as_of")
    @classmethod
    def _plausible_moment(cls, value: datetime | None) -> datetime | None:
        if value is not None and not 2000 <= value.year <= 2099:
            raise ValueError("a time between 2000 and 2099")
        return value


COLUMNS = (
    export.Column("code", "编码", "Code", "text"),
    export.Column("name", "名称", "Name", "text"),
    export.Column("received", "接报数", "Received"),
    export.Column("filed", "立案数", "Filed"),
    export.Column("rejected", "不予受理数", "Rejected"),
    export.Column("due", "应结案数", "Due"),
    export.Column("closed", "结案数", "Closed"),
    export.Column("closed_on_time", "按期结案数", "Closed on time"),
    export.Column("closure_rate", "结案率", "Closure rate", "rate"),
    export.Column("on_time_rate", "按期结案率", "On-time rate", "rate"),
    export.Column("registered", "挂账数", "On the register"),
    export.Column("median_accept_h", "受理用时中位数(小时)", "Median hours to accept", "number"),
    export.Column("p90_accept_h", "受理用时P90(小时)", "P90 hours to accept", "number"),
    export.Column("median_close_h", "结案用时中位数(小时)", "Median hours to close", "number"),
    export.Column("p90_close_h", "结案用时P90(小时)", "P90 hours to close", "number"),
    export.Column("median_accept_wh", "受理用时中位数(工作小时)", "Median working hours to accept", "number"),
    export.Column("p90_accept_wh", "受理用时P90(工作小时)", "P90 working hours to accept", "number"),
    export.Column("median_close_wh", "结案用时中位数(工作小时)", "Median working hours to close", "number"),
    export.Column("p90_close_wh", "结案用时P90(工作小时)", "P90 working hours to close", "number"),
    export.Column("backlog", "积压数", "Backlog"),
    export.Column("backlog_median_age_h", "积压时长中位数(小时)", "Median backlog age (h)", "number"),
    export.Column("overdue", "超期数", "Overdue"),
    export.Column("rework", "返工数", "Rework"),
    export.Column("self_handled_share", "自行处置占比", "Self-handled share", "rate"),
    export.Column("rating_mean", "满意度均分", "Mean rating", "number"),
    export.Column("rated_share", "评价率", "Rated share", "rate"),
)
UNIT_NAMES = {
    "township": ("乡镇/街道", "Township"),
    "village": ("村/社区", "Village"),
    "grid": ("网格", "Grid"),
    "department": ("部门", "Department"),
    "category": ("事件类别", "Category"),
}


class CoverageQuery(QueryModel):
    """Parameters of ``GET /api/v1/analytics/coverage``."""

    days: int = Field(7, ge=1, le=366, description="The window: patrols and reports of the last N days.")
    level: Literal["grid", "village", "township"] = Field(
        "grid", description="One feature per unit of this level (grids carry patrols and members)."
    )
    simplify: float = Field(
        0.00005, ge=0, le=0.01, description="Outline tolerance in degrees (0: exact; 0.00005 is about 5 m)."
    )


def _indicator_row() -> dict:
    figure = {
        name: {"type": "integer"} if name in COUNTS else {"type": "number", "nullable": True}
        for name in INDICATORS
    }
    return {
        "type": "object",
        "required": ["code", "name", *INDICATORS],
        "properties": {
            "code": {"type": "string"},
            "name": {"type": "string"},
            "name_en": {"type": "string", "nullable": True},
            **figure,
            "compare": {"type": "object", "properties": figure},
            "change": {"type": "object", "additionalProperties": {"type": "number", "nullable": True}},
        },
    }


_ROW = _indicator_row()
INDICATOR_REPLY = {
    "description": "rows per unit and the totals; CSV or XLSX with `format`",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["rows", "totals", "parameters"],
                "properties": {
                    "rows": {"type": "array", "items": _ROW},
                    "totals": _ROW | {"required": list(INDICATORS)},
                    "parameters": {"type": "object"},
                },
            }
        },
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
            "schema": {"type": "string", "format": "binary"}
        },
    },
}


@blueprint.get("/coverage")
@documented(
    summary="Coverage gaps per grid (or village, township): no member, unpatrolled, quiet, ok; the counts"
    " per status and the partition's gaps",
    query=CoverageQuery,
    responses={
        200: geojson_reply({"type": "object"}, "a FeatureCollection with `totals`, `gaps` and `parameters`")
    },
)
def coverage_gaps():
    user = require_user()
    query = parse_query(CoverageQuery)
    with get_db().read_connection() as conn:
        body = coverage.coverage(
            conn,
            days=query.days,
            level=query.level,
            now=clock.now(),
            members_visible=user.role in LAYERS["grids"].fields["member"].roles,
            simplify=query.simplify,
        )
    return geojson_response(body)


@blueprint.get("/response")
@documented(
    summary="The bulletin's response indicators by township, village, grid, department or category"
    " (docs/analytics.md), within the caller's scope",
    query=ResponseQuery,
    responses={200: INDICATOR_REPLY},
    errors=(404,),
)
def response_indicators():
    user = require_user()
    query = parse_query(ResponseQuery)
    with get_db().read_connection() as conn:
        period = Period.of(
            start=query.from_, end=query.to, as_of=query.as_of or clock.now(), zone=calendar_zone(conn)
        )
        selection = Selection(
            by=query.by,
            period=period,
            scope=scope_of(user),
            category=tuple(query.category.split(",")) if query.category else (),
            parent=query.parent,
        )
        result = response_rows(conn, selection)
        parameters = {
            "by": query.by,
            **period.describe(),
            "category": list(selection.category),
            "parent": query.parent,
            "compare": query.compare,
        }
        if query.compare:
            earlier = period.compared(query.compare)
            result = with_comparison(result, response_rows(conn, _replace_period(selection, earlier)))
            parameters["compared"] = earlier.describe()
    result["parameters"] = parameters
    if query.format == "json":
        return jsonify(result)
    return _table_download(result, query, period)


def _replace_period(selection: Selection, period: Period) -> Selection:
    return Selection(selection.by, period, selection.scope, selection.category, selection.parent)


def _table_download(result: dict, query: ResponseQuery, period: Period) -> Response:
    zh = query.lang == "zh"
    rows = [
        {**row, "name": row["name"] if zh else (row.get("name_en") or row["name"])} for row in result["rows"]
    ]
    rows.append({**result["totals"], "code": "", "name": "合计" if zh else "Total"})
    last_day = (period.end - timedelta(days=1)).isoformat()
    seen = period.as_of.astimezone(period.zone).strftime("%Y-%m-%d %H:%M")
    unit_zh, unit_en = UNIT_NAMES[query.by]
    first_day = period.start.isoformat()
    title = (
        f"事件处置指标（按{unit_zh}） {first_day} 至 {last_day}，截至 {seen}"
        if zh
        else f"Response indicators by {unit_en.lower()}, {first_day} to {last_day}, as of {seen}"
    )
    stem = f"response-{query.by}-{period.start.isoformat()}-{period.end.isoformat()}"
    if query.format == "csv":
        body, mimetype = export.csv_bytes(COLUMNS, rows, lang=query.lang), "text/csv; charset=utf-8"
    else:
        body = export.xlsx_bytes(
            COLUMNS, rows, title=title, sheet=unit_zh if zh else unit_en, lang=query.lang
        )
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{stem}.{query.format}"'},
    )
