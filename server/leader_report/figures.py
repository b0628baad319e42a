"""What the report shows, gathered from the analytics services (the same functions as the
dashboard and the API: the figures cannot disagree)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import psycopg

from server.analytics.coverage import coverage
from server.analytics.hotspots import HotspotCache, HotspotRequest, hotspots
from server.analytics.period import Period, add_months
from server.analytics.response import Selection, response_rows, with_comparison
from server.analytics.shapes import unit_shapes
from server.analytics.trends import monthly
from server.auth.scope import SEES_ALL
from server.errors import InvalidInput, NotFound

SQL_DIR = Path(__file__).parent / "sql"
# A report covers a month, a quarter or a year; longer spans are another kind of study.
MAX_DAYS = 366
# The rows under each unit of an area: the county's townships, a township's villages, ...
UNIT_BELOW = {"county": "township", "township": "village", "village": "grid"}
TREND_MONTHS = 12
TOP = 10
TOP_CATEGORIES = 8
HEATMAP_CATEGORIES = 3
# Slowest grids: only those with enough closed cases for a median to mean something.
MIN_CLOSED_FOR_SPEED = 3
OUTLINE_SIMPLIFY = {"township": 0.001, "village": 0.0005, "grid": 0.0003}


@dataclass(frozen=True)
class ReportRequest:
    period: Period
    area: str | None  # a township's or village's code; None: the county
    made_by: str


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def check_period(period: Period) -> None:
    if (period.end - period.start).days > MAX_DAYS:
        raise InvalidInput(f"a report covers at most {MAX_DAYS} days", field="to")


def area_of(conn: psycopg.Connection, code: str | None) -> dict:
    """The report's area: the county, or the township or village ``code``."""
    if code is None:
        row = conn.execute(
            "SELECT code, name_zh, name_en, level FROM grids WHERE level = 'county'"
        ).fetchone()
        if row is None:
            raise NotFound("no county is loaded: import grids or load the demo first", field="grid")
        return row
    row = conn.execute("SELECT code, name_zh, name_en, level FROM grids WHERE code = %s", [code]).fetchone()
    if row is None:
        raise NotFound(f"no grid with code {code!r}", field="grid")
    if row["level"] not in ("township", "village"):
        raise InvalidInput("a report is for the county, a township or a village", field="grid")
    return row


def gather(conn: psycopg.Connection, request: ReportRequest, *, step=lambda name: None) -> dict:
    """Everything the report draws; ``step(name)`` is called before each part (a progress bar)."""
    period = request.period
    check_period(period)
    area = area_of(conn, request.area)
    parent = request.area
    unit = UNIT_BELOW[area["level"]]
    selection = Selection(by=unit, period=period, scope=SEES_ALL, parent=parent)

    step("indicators")
    units = response_rows(conn, selection)
    with_previous = with_comparison(
        units, response_rows(conn, replace(selection, period=period.compared("previous")))
    )
    last_year = response_rows(conn, replace(selection, period=period.compared("last_year")))
    bulletin = {
        "current": units["totals"],
        "previous": with_previous["totals"]["compare"],
        "last_year": last_year["totals"],
    }
    ranked = sorted(
        (row for row in with_previous["rows"] if row["due"]),
        key=lambda row: (-(row["on_time_rate"] or 0), -row["due"], row["code"]),
    )

    step("grids and cases")
    grid_rows = response_rows(conn, replace(selection, by="grid"))["rows"]
    slowest = sorted(
        (
            row
            for row in grid_rows
            if row["closed"] >= MIN_CLOSED_FOR_SPEED and row["median_close_h"] is not None
        ),
        key=lambda row: (-row["median_close_h"], row["code"]),
    )[:TOP]
    overdue = conn.execute(
        _sql("overdue_cases.sql"), {"as_of": period.as_of, "area": parent, "limit": TOP}
    ).fetchall()
    categories = with_comparison(
        response_rows(conn, replace(selection, by="category")),
        response_rows(conn, replace(selection, by="category", period=period.compared("previous"))),
    )["rows"]
    categories = sorted((row for row in categories if row["received"] or row["compare"]["received"]),
                        key=lambda row: (-row["received"], row["code"]))[:TOP_CATEGORIES]  # fmt: skip

    step("trend")
    first_month = add_months(period.start.replace(day=1), -(TREND_MONTHS - 1))
    trend = monthly(conn, selection, first_month=first_month, months=TREND_MONTHS, as_of=period.as_of)

    step("maps")
    grid_codes = set(unit_shapes(conn, level="grid", parent=parent, simplify=0).keys())
    spots = json.loads(
        hotspots(
            conn,
            HotspotRequest(unit="grid", resolution=None, period=period),
            cache=HotspotCache(size=1),
            now=period.as_of,
        )
    )
    covered = coverage(
        conn,
        days=max(1, min((period.end - period.start).days, MAX_DAYS)),
        level="grid",
        now=min(period.as_of, period.ends_at),
        members_visible=False,
        simplify=OUTLINE_SIMPLIFY["grid"],
    )
    heat_categories = [row["code"] for row in categories[:HEATMAP_CATEGORIES] if row["received"]]
    heat = conn.execute(
        _sql("heat_points.sql"),
        {
            "starts_at": period.starts_at,
            "ends_at": period.ends_at,
            "as_of": period.as_of,
            "categories": heat_categories,
            "area": parent,
        },
    ).fetchall()
    return {
        "area": area,
        "unit": unit,
        "period": period,
        "compared": {"previous": period.compared("previous"), "last_year": period.compared("last_year")},
        "made_by": request.made_by,
        "bulletin": bulletin,
        "units": ranked,
        "unit_shapes": unit_shapes(conn, level=unit, parent=parent, simplify=OUTLINE_SIMPLIFY[unit]),
        "slowest_grids": slowest,
        "overdue_cases": overdue,
        "categories": categories,
        "trend": trend,
        "hotspots": [f for f in spots["features"] if f["properties"]["unit"] in grid_codes],
        "coverage": [f for f in covered["features"] if f["properties"]["unit"] in grid_codes],
        "heat_categories": [row for row in categories if row["code"] in heat_categories],
        "heat": [[row["lat"], row["lon"], row["n"]] for row in heat],
    }


def made_at(period: Period, now: datetime) -> str:
    return now.astimezone(period.zone).strftime("%Y-%m-%d %H:%M")
