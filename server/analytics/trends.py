"""Series for the leaders' charts: the bulletin's figures month by month, and the spread of the
time to close per department (docs/analytics.md: the same definitions as the indicators)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time

import psycopg
from sqlalchemy import Float, and_, case, cast, func, or_, select
from sqlalchemy.dialects import postgresql

from server.analytics.period import Period, add_months
from server.analytics.response import Selection, definitions, filtered_source, hours_between
from server.analytics.tables import departments, fetch, incidents

# Whiskers of the box plots: the 10th and 90th percentiles (a county's slowest cases are
# months-long outliers that would flatten every box).
BOX_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 0.9)


def monthly(
    conn: psycopg.Connection, selection: Selection, *, first_month: date, months: int, as_of: datetime
) -> list[dict]:
    """For each month from ``first_month``: received, due, closed, closed on time and the two
    rates, each month seen at ``as_of``."""
    zone = selection.period.zone
    window = Period(first_month, add_months(first_month, months), as_of, zone)
    # Trends are county- or parent-wide: no unit join.
    _, source, _, conditions = filtered_source(conn, replace(selection, by="category"))
    i = incidents.c
    defined = definitions(window)
    # The month of a moment by binary search over the months' first instants (local midnight):
    # cheaper than converting every timestamp to local time.
    firsts = [add_months(first_month, k) for k in range(months + 1)]
    bounds = postgresql.array([datetime.combine(day, time(), zone) for day in firsts])
    in_window = or_(
        and_(i.reported_at >= window.starts_at, i.reported_at < window.ends_at),
        and_(i.due_at >= window.starts_at, i.due_at < window.ends_at),
    )
    # One pass: each case counts in the month it was received and in the month it fell due.
    cases = (
        select(
            case((defined["received"], func.width_bucket(i.reported_at, bounds))).label("received_month"),
            case((defined["due"], func.width_bucket(i.due_at, bounds))).label("due_month"),
            defined["closed"].label("closed"),
            defined["closed_on_time"].label("on_time"),
        )
        .select_from(source)
        .where(*conditions, in_window)
        .subquery("cases")
    )
    c = cases.c
    counted = select(
        c.received_month,
        c.due_month,
        func.count().filter(c.received_month.is_not(None)).label("received"),
        func.count().filter(c.due_month.is_not(None)).label("due"),
        func.count().filter(c.closed).label("closed"),
        func.count().filter(c.on_time).label("on_time"),
    ).group_by(func.grouping_sets(c.received_month, c.due_month))
    by_month = {firsts[k]: {"received": 0, "due": 0, "closed": 0, "closed_on_time": 0} for k in range(months)}
    # Room to hash the two groupings (a year of cases) rather than sort them on disk.
    conn.execute("SET LOCAL work_mem = '64MB'")
    for row in fetch(conn, counted):
        if row["received_month"] is not None:
            by_month[firsts[row["received_month"] - 1]]["received"] = row["received"]
        elif row["due_month"] is not None:
            by_month[firsts[row["due_month"] - 1]].update(
                due=row["due"], closed=row["closed"], closed_on_time=row["on_time"]
            )
    series = []
    for month, figures in by_month.items():
        due_count = figures["due"]
        series.append(
            {
                "month": month.isoformat()[:7],
                **figures,
                "closure_rate": round(figures["closed"] / due_count, 4) if due_count else None,
                "on_time_rate": round(figures["closed_on_time"] / due_count, 4) if due_count else None,
            }
        )
    return series


def close_time_spread(conn: psycopg.Connection, selection: Selection) -> list[dict]:
    """Per department, the 10th, 25th, 50th, 75th and 90th percentile of hours to close, over the
    period's closed cases (due in the period, closed by ``as_of``)."""
    period: Period = selection.period
    _, source, _, conditions = filtered_source(conn, selection)
    i = incidents.c
    hours = hours_between(i.reported_at, i.closed_at)
    spread = (
        select(
            departments.c.code,
            departments.c.name_zh,
            departments.c.name_en,
            func.count().label("closed"),
            func.percentile_cont(postgresql.array(BOX_FRACTIONS)).within_group(cast(hours, Float)).label("q"),
        )
        .select_from(source.join(departments, departments.c.id == i.department_id))
        .where(
            *conditions,
            i.due_at >= period.starts_at,
            i.due_at < period.ends_at,
            i.closed_at <= period.as_of,
        )
        .group_by(departments.c.code, departments.c.name_zh, departments.c.name_en)
        .order_by(departments.c.code)
    )
    return [
        {
            "code": row["code"],
            "name": row["name_zh"],
            "name_en": row["name_en"],
            "closed": row["closed"],
            **{f"p{round(f * 100)}": round(q, 2) for f, q in zip(BOX_FRACTIONS, row["q"], strict=True)},
        }
        for row in fetch(conn, spread)
    ]
