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
    ARRAY,
    DateTime,
    Float,
    Integer,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects import postgresql

from server.analytics.period import Period
from server.analytics.tables import categories, compiled, departments, fetch, grids, incidents
from server.analytics.working_hours import WorkClock, clock_cursor
from server.auth.scope import DEPARTMENT, GRIDS, Scope
from server.errors import InvalidInput, NotFound

GRID_LEVELS = {"township": 2, "village": 3, "grid": 4}  # depth in the grid tree
UNITS = (*GRID_LEVELS, "department", "category")

COUNTS = (
    "received", "filed", "rejected", "due", "closed", "closed_on_time", "registered",
    "backlog", "overdue", "rework",
)  # fmt: skip
RATES = ("closure_rate", "on_time_rate", "self_handled_share", "rated_share")
HOURS = (
    "median_accept_h", "p90_accept_h", "median_close_h", "p90_close_h", "median_accept_wh",
    "p90_accept_wh", "median_close_wh", "p90_close_wh", "backlog_median_age_h",
)  # fmt: skip
# Columns of the statement holding two indicators each (the median and p90 of one sort).
PAIRED = {
    "accept_h": ("median_accept_h", "p90_accept_h"),
    "close_h": ("median_close_h", "p90_close_h"),
    "accept_wh": ("median_accept_wh", "p90_accept_wh"),
    "close_wh": ("median_close_wh", "p90_close_wh"),
}
INDICATORS = (
    "received", "filed", "rejected", "due", "closed", "closed_on_time", "closure_rate",
    "on_time_rate", "registered", "median_accept_h", "p90_accept_h", "median_close_h",
    "p90_close_h", "median_accept_wh", "p90_accept_wh", "median_close_wh", "p90_close_wh",
    "backlog", "backlog_median_age_h", "overdue", "rework",
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


def hours_between(start, end):
    # date_part, not extract: extract returns numeric, several times slower to aggregate.
    return func.date_part("epoch", end - start) / 3600.0


def _ratio(numerator, denominator):
    return cast(numerator, Float) / func.nullif(denominator, 0)


def _percentile(fraction: float | tuple[float, ...], value):
    # percentile_cont skips NULLs (cases that do not count). Several fractions at once (an
    # array) cost one sort instead of one each.
    fractions = postgresql.array(fraction) if isinstance(fraction, tuple) else fraction
    return func.percentile_cont(fractions).within_group(value)


def period_values(period: Period) -> dict:
    """The period's bind parameters by name (the statements name every value that varies)."""
    return {"starts_at": period.starts_at, "ends_at": period.ends_at, "as_of": period.as_of}


def _period_params(period: Period) -> tuple:
    return tuple(
        bindparam(name, value, type_=DateTime(timezone=True)) for name, value in period_values(period).items()
    )


def definitions(period: Period) -> dict:
    """The bulletin's definitions (docs/analytics.md) as conditions on a case: received, due,
    closed and closed on time in the period, seen at ``as_of``. The indicators and the monthly
    series both count these."""
    i = incidents.c
    starts, ends, as_of = _period_params(period)
    received = and_(i.reported_at >= starts, i.reported_at < ends, i.reported_at <= as_of)
    due = and_(or_(i.rejected_at.is_(None), i.rejected_at > as_of), i.due_at >= starts, i.due_at < ends)
    closed = and_(due, i.closed_at <= as_of)
    return {
        "received": received,
        "due": due,
        "closed": closed,
        "closed_on_time": and_(closed, i.closed_at <= i.due_at),
    }


def case_columns(period: Period, clock: WorkClock) -> list:
    """What each case counts as in the period: one boolean per definition, and the hours that
    the percentiles read; working hours only for the categories whose limits run in working
    time. The hours are computed for every case and the aggregates keep those that count (a
    FILTER on a flag): a CASE on the definitions here would evaluate them again, since
    PostgreSQL does not share an expression between columns."""
    i = incidents.c
    as_of = _period_params(period)[2]
    defined = definitions(period)
    received, due, closed = defined["received"], defined["due"], defined["closed"]
    filed = and_(received, i.accepted_at <= as_of)
    backlog = and_(
        i.reported_at <= as_of,
        or_(i.closed_at.is_(None), i.closed_at > as_of),
        or_(i.rejected_at.is_(None), i.rejected_at > as_of),
    )
    rated = and_(closed, i.rated_at <= as_of)
    in_working_time = clock.counts(i.category_code)
    return [
        received.label("received"),
        filed.label("filed"),
        and_(received, i.rejected_at <= as_of).label("rejected"),
        due.label("due"),
        closed.label("closed"),
        defined["closed_on_time"].label("closed_on_time"),
        and_(backlog, i.status == "registered", i.registered_at <= as_of).label("registered"),
        backlog.label("backlog"),
        and_(backlog, i.due_at < as_of).label("overdue"),
        and_(due, i.rework_count > 0).label("rework"),
        and_(received, i.self_handled).label("self_handled"),
        rated.label("rated"),
        hours_between(i.reported_at, i.accepted_at).label("accept_h"),
        hours_between(i.reported_at, i.closed_at).label("close_h"),
        # Working time: each instant's working seconds since the calendar's first day, here (in
        # the parallel scan); the differences in the aggregates.
        *(
            case((in_working_time, clock.worked_at(moment))).label(f"worked_{name}")
            for name, moment in (
                ("reported", i.reported_at),
                ("accepted", i.accepted_at),
                ("closed", i.closed_at),
            )
        ),
        hours_between(i.reported_at, as_of).label("age_h"),
        cast(i.rating, Float).label("rating"),
    ]


def _working_hours(cases, start: str, end: str):
    return (cases[f"worked_{end}"] - cases[f"worked_{start}"]) / 3600.0


def indicator_columns(cases, clock: WorkClock) -> list:
    """Every indicator as an aggregate over the columns of ``case_columns`` (``cases``)."""

    def count(flag):
        return func.count().filter(flag)

    return [
        *(count(cases[name]).label(name) for name in ("received", "filed", "rejected", "due", "closed")),
        count(cases.closed_on_time).label("closed_on_time"),
        _ratio(count(cases.closed), count(cases.due)).label("closure_rate"),
        _ratio(count(cases.closed_on_time), count(cases.due)).label("on_time_rate"),
        count(cases.registered).label("registered"),
        _percentile((0.5, 0.9), cases.accept_h).filter(cases.filed).label("accept_h"),
        _percentile((0.5, 0.9), cases.close_h).filter(cases.closed).label("close_h"),
        # NULL outside the working-time categories, which percentile_cont skips.
        _percentile((0.5, 0.9), _working_hours(cases, "reported", "accepted"))
        .filter(cases.filed)
        .label("accept_wh"),
        _percentile((0.5, 0.9), _working_hours(cases, "reported", "closed"))
        .filter(cases.closed)
        .label("close_wh"),
        count(cases.backlog).label("backlog"),
        _percentile(0.5, cases.age_h).filter(cases.backlog).label("backlog_median_age_h"),
        count(cases.overdue).label("overdue"),
        count(cases.rework).label("rework"),
        _ratio(count(cases.self_handled), count(cases.received)).label("self_handled_share"),
        func.avg(cases.rating).filter(cases.rated).label("rating_mean"),
        _ratio(count(cases.rated), count(cases.closed)).label("rated_share"),
    ]


# Constants in the text, not bind parameters: the partial index of open cases must be provable
# from the statement, which a generic plan of a bind parameter is not.
FINAL = literal_column("'closed'"), literal_column("'rejected'")


def _finished_after(as_of):
    """Cases closed or rejected after ``as_of`` and reported by then (the index
    incidents_finished_reported_idx, sql/0042_baseline_0_1.sql, written identically)."""
    i = incidents.c
    return and_(func.coalesce(i.closed_at, i.rejected_at) > as_of, i.reported_at <= as_of)


def _relevant(period: Period):
    """Cases that can count in any indicator: received or due in the period, or open at
    ``as_of`` (open now, or finished after ``as_of``). Each alternative matches an index."""
    i = incidents.c
    starts, ends, as_of = _period_params(period)
    return or_(
        and_(i.reported_at >= starts, i.reported_at < ends),
        and_(i.due_at >= starts, i.due_at < ends),
        i.status.notin_(FINAL),
        _finished_after(as_of),
    )


def selection_values(selection: Selection, parent: dict | None) -> dict:
    """The selection's bind parameters by name: the scope, the categories and the parent."""
    scope, values = selection.scope, {}
    if scope.kind == GRIDS:
        values["scope_grids"] = sorted(scope.grid_ids)
    elif scope.kind == DEPARTMENT:
        values["scope_department"] = scope.department_id
    if selection.category:
        values["categories"] = list(selection.category)
    if parent is not None:
        values["parent_path"] = parent["path"]
    return values


def _scope_filter(scope: Scope, values: dict):
    if scope.kind == GRIDS:
        if not scope.grid_ids:
            return false()
        return incidents.c.grid_id == any_(bindparam("scope_grids", values["scope_grids"], ARRAY(Integer)))
    if scope.kind == DEPARTMENT:
        return incidents.c.department_id == bindparam("scope_department", values["scope_department"], Integer)
    return true()


def _parent_row(conn: psycopg.Connection, code: str) -> dict:
    row = conn.execute("SELECT id, level, path::text AS path FROM grids WHERE code = %s", [code]).fetchone()
    if row is None:
        raise NotFound(f"no grid with code {code!r}", field="parent")
    return row


def _inside(parent: dict):
    """Grids at or below ``parent`` (ltree: its path is a prefix of theirs)."""
    return grids.c.path.op("<@")(cast(bindparam("parent_path", parent["path"], Text), grids.c.path.type))


def unit_rows_of(by: str, parent: dict | None):
    """Every unit of the kind ``by`` (also those without a case), below ``parent`` if given."""
    if by in GRID_LEVELS:
        g = grids.c
        rows = select(g.id, g.code, g.name_zh.label("name"), g.name_en).where(g.level == by)
        return rows.where(_inside(parent)) if parent is not None else rows
    if by == "department":
        d = departments.c
        return select(d.id, d.code, d.name_zh.label("name"), d.name_en)
    c = categories.c
    return select(c.code.label("id"), c.code, c.name_zh.label("name"), c.name_en)


def _units(selection: Selection, parent: dict | None):
    """The unit rows, the incidents joined to what puts each in its unit, and that unit's
    expression. Grid units go through a small table of (grid, unit) pairs: the tree is walked
    once per grid, not once per incident."""
    g = grids.c
    unit_rows = unit_rows_of(selection.by, parent)
    if selection.by in GRID_LEVELS:
        depth = GRID_LEVELS[selection.by]
        # A grid's ancestor at this depth: the label at that position of its path.
        owners = select(
            g.id.label("grid_id"),
            cast(func.ltree2text(func.subpath(g.path, depth - 1, 1)), Integer).label("unit_id"),
        ).where(func.nlevel(g.path) >= depth)
        if parent is not None:
            owners = owners.where(_inside(parent))
        owners = owners.cte("owners")
        return unit_rows, incidents.join(owners, owners.c.grid_id == incidents.c.grid_id), owners.c.unit_id
    source = incidents
    if parent is not None:
        inside = select(g.id.label("grid_id")).where(_inside(parent)).cte("inside")
        source = incidents.join(inside, inside.c.grid_id == incidents.c.grid_id)
    unit_of = incidents.c.department_id if selection.by == "department" else incidents.c.category_code
    return unit_rows, source, unit_of


def _checked_parent(conn: psycopg.Connection, selection: Selection) -> dict | None:
    if selection.by not in UNITS:
        raise InvalidInput(f"by must be one of {', '.join(UNITS)}", field="by")
    return _parent_row(conn, selection.parent) if selection.parent else None


def _filtered(selection: Selection, parent: dict | None):
    unit_rows, source, unit_of = _units(selection, parent)
    values = selection_values(selection, parent)
    conditions = [_scope_filter(selection.scope, values)]
    if selection.category:
        conditions.append(
            incidents.c.category_code == any_(bindparam("categories", values["categories"], ARRAY(Text)))
        )
    return unit_rows, source, unit_of, conditions


def filtered_source(conn: psycopg.Connection, selection: Selection):
    """The unit rows, the incidents joined to their units, the unit expression, and the
    selection's filters (scope, categories; the parent through the join)."""
    return _filtered(selection, _checked_parent(conn, selection))


# The indicators' statement compiled once per shape (the kind of unit, whether a parent, scope
# and categories are given): composing and compiling it took 30 ms, a tenth of the answer. Every
# value that varies is a named bind parameter (tests check that two selections of one shape give
# the same text and differ only in those).
_compiled_statements: dict[tuple, tuple[str, dict]] = {}


def statement_shape(selection: Selection) -> tuple:
    scope = selection.scope
    return (
        selection.by,
        selection.parent is not None,
        scope.kind,
        bool(scope.grid_ids),
        bool(selection.category),
    )


def indicator_statement(selection: Selection, parent: dict | None, clock: WorkClock):
    """The statement of ``response_rows``: one row per unit with cases, and the totals."""
    _, source, unit_of, conditions = _filtered(selection, parent)
    conditions.append(_relevant(selection.period))
    # Each case's flags are computed once, below an OFFSET (which keeps PostgreSQL from
    # folding the subquery into the aggregates and evaluating each definition once per use).
    period = selection.period
    cases = (
        select(unit_of.label("unit_id"), *case_columns(period, clock))
        .select_from(source)
        .where(*conditions)
        .offset(0)
        .subquery("cases")
    )
    # One pass for the units and the totals: GROUPING SETS ((unit), ()).
    return select(
        cases.c.unit_id, func.grouping(cases.c.unit_id).label("is_total"), *indicator_columns(cases.c, clock)
    ).group_by(func.grouping_sets(cases.c.unit_id, tuple_()))


def response_rows(conn: psycopg.Connection, selection: Selection) -> dict:
    """``{"rows": [...], "totals": {...}}`` for the selection (figures by ``INDICATORS``)."""
    parent = _checked_parent(conn, selection)
    period = selection.period
    clock = WorkClock.read(conn, first=period.starts_at, last=period.as_of)
    shape = statement_shape(selection)
    if shape not in _compiled_statements:
        _compiled_statements[shape] = compiled(indicator_statement(selection, parent, clock))
    text, constants = _compiled_statements[shape]
    values = {**period_values(period), **clock.values(), **selection_values(selection, parent)}
    by_unit, totals = {}, None
    for row in clock_cursor(conn).execute(text, {**constants, **values}).fetchall():
        if row["is_total"]:
            totals = row
        else:
            by_unit[row["unit_id"]] = row
    unit_rows = unit_rows_of(selection.by, parent)
    rows = [
        _figures({**unit, **by_unit.get(unit["id"], dict.fromkeys(INDICATORS))})
        for unit in fetch(conn, unit_rows.order_by(unit_rows.selected_columns.code))
    ]
    return {"rows": rows, "totals": _figures(totals)}


def _figures(row: dict) -> dict:
    """A result row with zeros for units without cases and rounded, JSON-friendly numbers."""
    figures = {key: row[key] for key in ("code", "name", "name_en") if key in row}
    row = dict(row)
    for column, names in PAIRED.items():
        row.update(zip(names, row.pop(column, None) or (None, None), strict=True))
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
