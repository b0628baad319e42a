"""The county bulletin's response indicators (docs/analytics.md), by grid, village, township,
department or category, from one SQL statement over indexed timestamps.

The statement is composed with SQLAlchemy Core: the grouping (five kinds of unit), the filters
(category, parent, the viewer's scope) and the indicators are independent optional parts, which
plain SQL would need as string templates or one statement per combination.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from sqlalchemy import (
    Float,
    Integer,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
)

from server.analytics.period import Period
from server.analytics.tables import categories, compiled, departments, grids, incidents
from server.auth.scope import DEPARTMENT, GRIDS, Scope
from server.errors import InvalidInput, NotFound

GRID_LEVELS = {"township": 2, "village": 3, "grid": 4}  # depth in the grid tree
UNITS = (*GRID_LEVELS, "department", "category")
FINAL_STATUSES = ("closed", "rejected")

COUNTS = (
    "received", "filed", "rejected", "due", "closed", "closed_on_time", "registered",
    "backlog", "overdue", "rework",
)  # fmt: skip
RATES = ("closure_rate", "on_time_rate", "self_handled_share", "rated_share")
HOURS = (
    "median_accept_h", "p90_accept_h", "median_close_h", "p90_close_h", "backlog_median_age_h",
)  # fmt: skip
INDICATORS = (
    "received", "filed", "rejected", "due", "closed", "closed_on_time", "closure_rate",
    "on_time_rate", "registered", "median_accept_h", "p90_accept_h", "median_close_h",
    "p90_close_h", "backlog", "backlog_median_age_h", "overdue", "rework",
    "self_handled_share", "rating_mean", "rated_share",
)  # fmt: skip


@dataclass(frozen=True)
class Selection:
    """What to count: the unit rows, the filters and the viewer's scope."""

    by: str
    period: Period
    scope: Scope
    category: tuple[str, ...] = ()
    parent: str | None = None


def _hours(interval):
    return func.extract("epoch", interval) / 3600.0


def _ratio(numerator, denominator):
    return cast(numerator, Float) / func.nullif(denominator, 0)


def _percentile(fraction: float, value, where):
    # percentile_cont skips NULLs: the CASE keeps the cases ``where`` holds.
    return func.percentile_cont(fraction).within_group(case((where, value)))


def indicator_columns(period: Period) -> list:
    """Every indicator as an aggregate over ``incidents`` (one row or one group per unit)."""
    i = incidents.c
    starts, ends, as_of = period.starts_at, period.ends_at, period.as_of
    received = and_(i.reported_at >= starts, i.reported_at < ends, i.reported_at <= as_of)
    accepted = and_(received, i.accepted_at <= as_of)
    rejected = and_(received, i.rejected_at <= as_of)
    due = and_(or_(i.rejected_at.is_(None), i.rejected_at > as_of), i.due_at >= starts, i.due_at < ends)
    closed = and_(due, i.closed_at <= as_of)
    on_time = and_(closed, i.closed_at <= i.due_at)
    backlog = and_(
        i.reported_at <= as_of,
        or_(i.closed_at.is_(None), i.closed_at > as_of),
        or_(i.rejected_at.is_(None), i.rejected_at > as_of),
    )
    rated = and_(closed, i.rated_at <= as_of)

    def count(where):
        return func.count().filter(where)

    accept_h = _hours(i.accepted_at - i.reported_at)
    close_h = _hours(i.closed_at - i.reported_at)
    return [
        count(received).label("received"),
        count(accepted).label("filed"),
        count(rejected).label("rejected"),
        count(due).label("due"),
        count(closed).label("closed"),
        count(on_time).label("closed_on_time"),
        _ratio(count(closed), count(due)).label("closure_rate"),
        _ratio(count(on_time), count(due)).label("on_time_rate"),
        count(and_(backlog, i.status == "registered", i.registered_at <= as_of)).label("registered"),
        _percentile(0.5, accept_h, accepted).label("median_accept_h"),
        _percentile(0.9, accept_h, accepted).label("p90_accept_h"),
        _percentile(0.5, close_h, closed).label("median_close_h"),
        _percentile(0.9, close_h, closed).label("p90_close_h"),
        count(backlog).label("backlog"),
        _percentile(0.5, _hours(literal(as_of) - i.reported_at), backlog).label("backlog_median_age_h"),
        count(and_(backlog, i.due_at < as_of)).label("overdue"),
        count(and_(due, i.rework_count > 0)).label("rework"),
        _ratio(count(and_(received, i.self_handled)), count(received)).label("self_handled_share"),
        func.avg(case((rated, cast(i.rating, Float)))).label("rating_mean"),
        _ratio(count(rated), count(closed)).label("rated_share"),
    ]


def _relevant(period: Period):
    """Cases that can count in any indicator: received or due in the period, or open at
    ``as_of``. Each alternative matches an index (reported_at, due_at, the open status, and
    closing or rejecting after ``as_of``)."""
    i = incidents.c
    return or_(
        and_(i.reported_at >= period.starts_at, i.reported_at < period.ends_at),
        and_(i.due_at >= period.starts_at, i.due_at < period.ends_at),
        i.status.notin_(FINAL_STATUSES),
        and_(i.status == "closed", i.closed_at > period.as_of),
        and_(i.status == "rejected", i.rejected_at > period.as_of),
    )


def _scope_filter(scope: Scope):
    if scope.kind == GRIDS:
        return incidents.c.grid_id.in_(sorted(scope.grid_ids)) if scope.grid_ids else false()
    if scope.kind == DEPARTMENT:
        return incidents.c.department_id == scope.department_id
    return true()


def _parent_row(conn: psycopg.Connection, code: str) -> dict:
    row = conn.execute("SELECT id, level, path::text AS path FROM grids WHERE code = %s", [code]).fetchone()
    if row is None:
        raise NotFound(f"no grid with code {code!r}", field="parent")
    return row


def _inside(parent: dict):
    """Grids at or below ``parent`` (ltree: its path is a prefix of theirs)."""
    return grids.c.path.op("<@")(cast(literal(parent["path"]), grids.c.path.type))


def _units(selection: Selection, parent: dict | None):
    """The unit rows (every unit, also those without a case) and the expression that puts an
    incident's row in its unit."""
    if selection.by in GRID_LEVELS:
        depth = GRID_LEVELS[selection.by]
        unit_rows = select(grids.c.id, grids.c.code, grids.c.name_zh.label("name"), grids.c.name_en).where(
            grids.c.level == selection.by
        )
        if parent is not None:
            unit_rows = unit_rows.where(
                grids.c.path.op("<@")(cast(literal(parent["path"]), grids.c.path.type))
            )
        # The incident's grid's ancestor at this depth: the label at that position of its path.
        unit_of = case(
            (
                func.nlevel(grids.c.path) >= depth,
                cast(func.ltree2text(func.subpath(grids.c.path, depth - 1, 1)), Integer),
            ),
            else_=null(),
        )
        return unit_rows, unit_of, True
    if selection.by == "department":
        unit_rows = select(
            departments.c.id, departments.c.code, departments.c.name_zh.label("name"), departments.c.name_en
        )
        return unit_rows, incidents.c.department_id, False
    unit_rows = select(
        categories.c.code.label("id"),
        categories.c.code,
        categories.c.name_zh.label("name"),
        categories.c.name_en,
    )
    return unit_rows, incidents.c.category_code, False


def response_rows(conn: psycopg.Connection, selection: Selection) -> dict:
    """``{"rows": [...], "totals": {...}}`` for the selection (figures by ``INDICATORS``)."""
    if selection.by not in UNITS:
        raise InvalidInput(f"by must be one of {', '.join(UNITS)}", field="by")
    parent = _parent_row(conn, selection.parent) if selection.parent else None
    unit_rows, unit_of, needs_grid = _units(selection, parent)
    source = incidents.join(grids, grids.c.id == incidents.c.grid_id) if needs_grid or parent else incidents
    conditions = [_relevant(selection.period), _scope_filter(selection.scope)]
    if selection.category:
        conditions.append(incidents.c.category_code.in_(selection.category))
    if parent is not None:
        conditions.append(_inside(parent))
    measures = indicator_columns(selection.period)

    grouped = (
        select(unit_of.label("unit_id"), *measures).select_from(source).where(*conditions).group_by(unit_of)
    ).cte("grouped")
    units = unit_rows.cte("units")
    rows_statement = (
        select(units.c.code, units.c.name, units.c.name_en, *[grouped.c[name] for name in INDICATORS])
        .select_from(units.outerjoin(grouped, grouped.c.unit_id == units.c.id))
        .order_by(units.c.code)
    )
    totals_statement = select(*measures).select_from(source).where(*conditions)

    rows = [_figures(row) for row in _fetch(conn, rows_statement)]
    totals = _figures(_fetch(conn, totals_statement)[0])
    return {"rows": rows, "totals": totals}


def _fetch(conn: psycopg.Connection, statement) -> list[dict]:
    text, params = compiled(statement)
    return conn.execute(text, params).fetchall()


def _figures(row: dict) -> dict:
    """A result row with zeros for units without cases and rounded, JSON-friendly numbers."""
    figures = {key: row[key] for key in ("code", "name", "name_en") if key in row}
    for name in INDICATORS:
        value = row[name]
        if name in COUNTS:
            figures[name] = int(value or 0)
        elif value is None:
            figures[name] = None
        elif name in RATES:
            figures[name] = round(float(value), 4)
        else:
            figures[name] = round(float(value), 2)
    return figures


def with_comparison(current: dict, compared: dict) -> dict:
    """``current`` with each row's (and the totals') figures of the compared period and the
    change (current minus compared; for rates in fractions, so 0.05 is five points)."""

    def attach(figures: dict, other: dict | None) -> dict:
        other = other or {name: None for name in INDICATORS}
        return {
            **figures,
            "compare": {name: other[name] for name in INDICATORS},
            "change": {
                name: (
                    round(figures[name] - other[name], 4)
                    if figures[name] is not None and other[name] is not None
                    else None
                )
                for name in INDICATORS
            },
        }

    by_code = {row["code"]: row for row in compared["rows"]}
    return {
        "rows": [attach(row, by_code.get(row["code"])) for row in current["rows"]],
        "totals": attach(current["totals"], compared["totals"]),
    }
