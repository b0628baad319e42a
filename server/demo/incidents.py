"""Two years of synthetic incidents with full workflow histories, generated as numpy columns.

Where: each category has its own weight per grid (sanitation near towns, straw burning on the
valley's farmland, flood and geohazards in the mountains) times a few hotspots, and a point is a
household of the grid moved by a category-dependent distance. When: a daily rate per category
with real seasonality (rice-straw burning in September–October, floods June–August, epidemics in
winter), fewer on weekends, by hour of day, up to the moment `until` (the load). How it went:
every case is carried through the whole workflow (pace.py) with delays that depend on its
township's and department's speed, the grid centre's day shift and the county's working time;
some are rejected, self-handled by the grid member, extended, reworked or put on the register
(挂账) for months; then everything after `until` is cut off, so the newest cases are open in
every state, most within their time limits.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import shapely

from server.demo.bulk import NEVER
from server.demo.categories import (
    CATEGORY_MODELS,
    HOUR_WEIGHT,
    STRAW_HOUR_WEIGHT,
    SURNAMES_FOR_CALLERS,
    Category,
    CategoryModel,
)
from server.demo.pace import CHINA_OFFSET, DAY, HOUR, MINUTE, PACE, Pace, lognormal, on_duty
from server.demo.partition import Partition
from server.demo.people import People
from server.demo.settlements import KM_PER_DEGREE_LAT, KM_PER_DEGREE_LON
from server.worktime import WorkCalendar

__all__ = ["CHINA_OFFSET", "DAY", "DAYS", "HOUR", "MINUTE", "generate_incidents", "stage_columns"]

DAYS = 730
STATUSES = ["reported", "accepted", "rejected", "dispatched", "in_progress", "registered", "resolved",
            "verified", "closed"]  # fmt: skip
CHANNELS = ["app", "hotline_12345", "hotline_110", "wechat", "open311"]
CHANNEL_SHARE = [0.62, 0.18, 0.04, 0.12, 0.04]
PRIORITIES = ["low", "normal", "high", "urgent"]
HANDLING_LEVELS = ["grid", "village", "township", "county"]


def daily_rate(model: CategoryModel, days_local: np.ndarray) -> np.ndarray:
    """Seasonal rate on each day (days since the Unix epoch, China time), smooth between months."""
    dates = days_local.astype("datetime64[D]")
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(int)
    months = np.array(model.months)
    month_position = day_of_year / 365.25 * 12 - 0.5
    low = np.floor(month_position).astype(int)
    fraction = month_position - low
    rate = months[low % 12] * (1 - fraction) + months[(low + 1) % 12] * fraction
    weekday = (days_local + 3) % 7  # 1970-01-01 was a Thursday; 5, 6 = Saturday, Sunday
    return rate * np.where(weekday >= 5, 0.8, 1.0)


def _grid_weights(code: str, households, urban, rugged) -> np.ndarray:
    farmland = (1 - urban) * (1 - rugged) ** 2
    weights = {
        "sanitation": households * (1 + 2.5 * urban),
        "public_facility": households * (1 + urban),
        "resident_service": households * (1 + 0.3 * (1 - urban)),
        "dispute": households,
        "safety_hazard": households * (1 + 0.5 * urban + 0.5 * rugged),
        "epidemic": households,
        "straw_burning": households * farmland + 0.5,
        "flood_geohazard": np.sqrt(households) * (0.2 + 3 * rugged),
    }
    return weights[code].astype(float)


def _hotspots(centres: np.ndarray, households: np.ndarray, rng: np.random.Generator, count: int = 8):
    """Clusters beyond chance: (category code, excess factor per grid) around a few grids."""
    codes = ["sanitation", "straw_burning", "safety_hazard", "dispute", "flood_geohazard", "public_facility"]
    spots = []
    for number in range(count):
        code = codes[number % len(codes)]
        middle = centres[rng.choice(len(centres), p=households / households.sum())]
        radius_km = rng.uniform(1.0, 3.0)
        dx = (centres[:, 0] - middle[0]) * KM_PER_DEGREE_LON
        dy = (centres[:, 1] - middle[1]) * KM_PER_DEGREE_LAT
        spots.append((code, 1 + rng.uniform(3, 6) * np.exp(-(dx**2 + dy**2) / (2 * radius_km**2))))
    return spots


def _report_times(
    categories: list[Category], count: int, until_us: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Category and report time of `count` incidents over the `DAYS` days (China time) that end
    at `until_us`: the load day only up to that moment. Sorted by time."""
    local_until = until_us + CHINA_OFFSET
    last_day = local_until // DAY
    days = np.arange(last_day - DAYS + 1, last_day + 1)
    trend = 1 + 0.1 * (days - days[0]) / 365  # reporting grows as the system beds in
    straw = np.array([c.code == "straw_burning" for c in categories])
    # The share of each hour's reports that came before a time of day: piecewise linear.
    hour_cdf = np.array(
        [np.concatenate([[0], np.cumsum(w)]) / w.sum() for w in (HOUR_WEIGHT, STRAW_HOUR_WEIGHT)]
    )
    hour_points = np.arange(25) * HOUR
    elapsed_today = (
        np.interp(local_until - last_day * DAY, hour_points, hour_cdf[0]),
        np.interp(local_until - last_day * DAY, hour_points, hour_cdf[1]),
    )
    share_today = np.where(straw, elapsed_today[1], elapsed_today[0])  # per category
    rates = np.array(
        [
            CATEGORY_MODELS[c.code].share * daily_rate(CATEGORY_MODELS[c.code], days) * trend
            for c in categories
        ]
    )
    rates[:, -1] *= share_today
    cells = rng.choice(rates.size, size=count, p=(rates / rates.sum()).ravel())
    category = (cells // DAYS).astype(np.int16)
    day = days[cells % DAYS]
    # The time of day by the hourly profile; on the load day, only the part already past.
    quantile = rng.random(count) * np.where(day == last_day, share_today[category], 1.0)
    is_straw = straw[category]
    time_of_day = np.where(
        is_straw, np.interp(quantile, hour_cdf[1], hour_points), np.interp(quantile, hour_cdf[0], hour_points)
    ).astype(np.int64)
    reported = np.minimum(day * DAY + time_of_day - CHINA_OFFSET, until_us - 1)
    order = np.argsort(reported, kind="stable")  # ids follow report time, as in real life
    return category[order], reported[order]


def _speeds(rng: np.random.Generator, sigma: float, units: int, index: np.ndarray) -> np.ndarray:
    """Each case's speed factor, `index` being its unit (township or department): the units get
    the same log-normally spaced factors whatever the seed, in random order, scaled so that
    their geometric mean over the cases is 1. Units differ; the county's pace does not."""
    quantiles = [NormalDist().inv_cdf((rank + 0.5) / units) for rank in range(units)]
    per_case = np.exp(sigma * rng.permutation(np.array(quantiles)))[index]
    return per_case / np.exp(np.log(per_case).mean()) if len(per_case) else per_case


def generate_incidents(
    *,
    partition: Partition,
    households: np.ndarray,
    people: People,
    categories: list[Category],
    count: int,
    until_us: int,
    first_id: int,
    rng: np.random.Generator,
    calendar: WorkCalendar,
    pace: Pace = PACE,
) -> dict[str, tuple[str, np.ndarray]]:
    """Columns (name → (type, values)) for `count` incidents reported in the two years up to
    `until_us` (µs since the Unix epoch), as they stand at that moment. `calendar` is the
    county's working time, covering the two years and a few after."""
    areas = partition.areas
    grids = partition.indices("grid")
    grid_households = np.array([areas[g].households for g in grids], dtype=float)
    urban = np.array([areas[g].urban for g in grids], dtype=float)
    rugged = np.array([areas[g].ruggedness for g in grids])
    centres = shapely.get_coordinates(shapely.centroid([areas[g].geom for g in grids]))

    # -- what and when ------------------------------------------------------------------
    category, reported = _report_times(categories, count, until_us, rng)

    # -- where --------------------------------------------------------------------------
    grid_pos = np.empty(count, dtype=np.int64)
    hotspots = _hotspots(centres, grid_households, rng)
    for number, cat in enumerate(categories):
        chosen = np.flatnonzero(category == number)
        weight = _grid_weights(cat.code, grid_households, urban, rugged)
        for code, excess in hotspots:
            if code == cat.code:
                weight = weight * excess
        grid_pos[chosen] = rng.choice(len(grids), size=len(chosen), p=weight / weight.sum())
    grid_index = grids[grid_pos]
    # A household of the grid, moved a little (more for fields and slopes); back to the
    # household when the move would leave the grid.
    home_order = np.argsort(partition.household_grid, kind="stable")
    home_start = np.searchsorted(partition.household_grid[home_order], grid_index)
    per_grid = np.array([areas[g].households for g in range(len(areas))])[grid_index]
    homes = households[home_order[home_start + (rng.random(count) * per_grid).astype(np.int64)]]
    spread_m = np.array([CATEGORY_MODELS[c.code].spread_m for c in categories])[category]
    moved = homes + rng.normal(0, 1, (count, 2)) * (spread_m / 1000)[:, None] / (
        KM_PER_DEGREE_LON,
        KM_PER_DEGREE_LAT,
    )
    geoms = np.array([areas[g].geom for g in range(len(areas))], dtype=object)
    shapely.prepare(geoms[grids])
    inside = shapely.contains_xy(geoms[grid_index], moved[:, 0], moved[:, 1])
    point = np.where(inside[:, None], moved, homes)

    # -- who reported, how ----------------------------------------------------------------
    member = people.grid_member[grid_index]
    channel = rng.choice(len(CHANNELS), size=count, p=CHANNEL_SHARE).astype(np.int16)
    town = urban[grid_pos] > 0
    channel[town & (rng.random(count) < 0.15)] = CHANNELS.index("hotline_12345")
    # No member, no app reports: those come by WeChat from residents.
    channel[(member == 0) & (channel == CHANNELS.index("app"))] = CHANNELS.index("wechat")
    by_app = channel == CHANNELS.index("app")
    accuracy = np.where(by_app | (channel == CHANNELS.index("open311")), rng.lognormal(2.1, 0.6, count),
                        rng.lognormal(4.4, 0.7, count))  # fmt: skip
    reporter = np.where(by_app, member, 0)
    reporter_name = np.where(by_app, 0, rng.integers(1, 1 + 2 * len(SURNAMES_FOR_CALLERS), count)).astype(
        np.int16
    )

    # -- how it went ----------------------------------------------------------------------
    # The workflow of server/incidents/workflow.py: accept → dispatch (due = the time limit) →
    # start → resolve → verify (or rework → resolve again) → close → rate; or reject; or the grid
    # member's self_handle (straight to resolved); or, once started, register (挂账) and resume
    # months later with a new clock. Overdue open cases escalate one level at the due time and
    # one more for each further time limit, as escalate_overdue() does.
    # Townships and departments differ in speed, by factors that average 1 over the cases, so
    # that the county as a whole keeps the same pace (and overdue share) whatever the seed.
    townships = partition.indices("township")
    township_row = np.searchsorted(townships, partition.township_of()[grid_index])
    speed = _speeds(rng, 0.3, len(townships), township_row)
    all_departments = np.array(sorted(people.department_handlers))
    department = np.array([c.department_id for c in categories])[category]
    elsewhere = rng.random(count) < pace.other_department
    department[elsewhere] = rng.choice(all_departments, size=int(elsewhere.sum()))
    department_row = np.searchsorted(all_departments, department)
    slowness = speed * _speeds(rng, 0.25, len(all_departments), department_row)
    limit = np.array([c.time_limit_us for c in categories])[category]
    working = np.array([c.working for c in categories])[category]
    round_the_clock = ~working & (limit <= pace.round_the_clock)
    base_priority = np.array([PRIORITIES.index(c.priority) for c in categories])[category]
    priority = np.clip(base_priority + rng.choice([-1, 0, 1], size=count, p=[0.08, 0.84, 0.08]), 0, 3)

    def centre(times: np.ndarray) -> np.ndarray:
        """When the grid centre takes a step planned for `times`: in its day shift."""
        return np.where(round_the_clock, times, on_duty(times, rng.random(count), pace))

    def department_time(start: np.ndarray, amount: np.ndarray, only: np.ndarray | None = None) -> np.ndarray:
        """`amount` of a department's time after `start`: working time for working-time
        categories. With `only`, right for those cases only (the rest are never used)."""
        result = start + amount
        rows = working if only is None else working & only
        result[rows] = calendar.add(start[rows], amount[rows])
        return result

    def delay(step: tuple, scale=1.0) -> np.ndarray:
        return lognormal(rng, step[0] * scale, step[1], count)

    def pace_of_limit(step: tuple, scale=1.0) -> np.ndarray:
        return lognormal(rng, np.minimum(step[0], step[1] * limit) * scale, step[2], count)

    first_look = centre(reported)
    rejected = rng.random(count) < np.where(by_app, pace.reject_app, pace.reject_other)
    self_share = np.array([CATEGORY_MODELS[c.code].self_handled for c in categories])[category]
    self_handled = ~rejected & by_app & (rng.random(count) < self_share * pace.self_handled)
    dispatched_case = ~rejected & ~self_handled

    accepted = centre(first_look + delay(pace.accept, speed))
    dispatched = centre(accepted + delay(pace.dispatch, speed))
    started = department_time(dispatched, pace_of_limit(pace.start, slowness))
    first_due = department_time(dispatched, limit)
    work = np.where(
        self_handled,
        delay(pace.self_handle, speed),
        lognormal(
            rng,
            np.where(round_the_clock, pace.urgent_work_share, pace.work_share[0]) * limit * slowness,
            pace.work_share[1],
            count,
        ),
    )
    done = np.where(self_handled, first_look + work, department_time(started, work))

    # 挂账: filed on the register while in progress, before the due time; resumed months later
    # with a new clock (dispatched_at and due_at start again), then handled as any case.
    registered_case = dispatched_case & (rng.random(count) < pace.register)
    room = np.maximum(first_due - started, HOUR)
    registered = centre(started + (room * rng.uniform(0.2, 0.9, count)).astype(np.int64))
    resumed = centre(registered + delay(pace.registered_for))
    resumed_due = department_time(resumed, limit, registered_case)
    done = np.where(registered_case, department_time(resumed, work, registered_case), done)
    registered = np.where(registered_case, registered, NEVER)
    resumed = np.where(registered_case, resumed, NEVER)

    # Extensions go to cases that would run late, asked for while they still run.
    late = dispatched_case & ~registered_case & (done > first_due)
    extended_at = department_time(dispatched, (0.6 * limit).astype(np.int64), late)
    extended = late & (extended_at < done) & (rng.random(count) < pace.extend)
    extended_due = department_time(first_due, limit, extended)  # one more time limit from the due
    extended_at = np.where(extended, extended_at, NEVER)
    due = np.where(registered_case, resumed_due, np.where(extended, extended_due, first_due))
    clock_start = np.where(registered_case, resumed, dispatched)
    # Past its due time a case turns red on the supervision screen (督办) and is pushed through
    # (once started: a case started late still takes its time).
    push = lognormal(rng, pace.supervised[0] * limit, pace.supervised[1], count)
    pushed = department_time(np.maximum(due, started), push, dispatched_case & (done > due))
    done = np.where(dispatched_case, np.minimum(done, pushed), done)

    reworked_case = ~rejected & (rng.random(count) < pace.rework)
    first_resolved = np.where(reworked_case, done, NEVER)
    rework_at = done + delay(pace.rework_after)
    again = np.where(
        self_handled, rework_at + work // 2, department_time(rework_at, work // 2, reworked_case)
    )
    reworked = np.where(reworked_case, rework_at, NEVER)
    resolved = np.where(reworked_case, again, done)
    verified = centre(resolved + pace_of_limit(pace.verify))
    closed = centre(verified + pace_of_limit(pace.close))
    rated = np.where(rng.random(count) < pace.rated, closed + delay(pace.rate_after), NEVER)
    rating = np.where(
        closed > due,
        rng.choice([1, 2, 3, 4, 5], size=count, p=[0.08, 0.12, 0.25, 0.30, 0.25]),
        rng.choice([1, 2, 3, 4, 5], size=count, p=[0.02, 0.04, 0.12, 0.32, 0.50]),
    )
    # escalate_overdue() moves an open case one level at its due time and one more at each
    # further time limit past it (grid → village → township → county).
    span = due - clock_start
    escalated = [
        np.where(dispatched_case & (closed > due + times * span), due + times * span, NEVER)
        for times in range(3)
    ]

    # Each kind of case skips the steps it never takes.
    rejected_at = np.where(rejected, accepted, NEVER)
    for column in (accepted, dispatched, started, first_due, due, extended_at, *escalated):
        column[~dispatched_case] = NEVER
    for column in (first_resolved, reworked, resolved, verified, closed, rated):
        column[rejected] = NEVER

    # Cut at `until`: what has not happened yet is not known.
    steps = (accepted, rejected_at, dispatched, started, registered, resumed, extended_at, *escalated,
             first_resolved, reworked, resolved, verified, closed, rated)  # fmt: skip
    for column in steps:
        column[column > until_us] = NEVER
    # The due time running at `until`: none before the dispatch and none on the register.
    due = np.where(
        registered_case,
        np.where(resumed != NEVER, resumed_due, first_due),
        np.where(extended_at != NEVER, extended_due, first_due),
    )
    due[(dispatched == NEVER) | ((registered != NEVER) & (resumed == NEVER))] = NEVER
    first_due[dispatched == NEVER] = NEVER
    # Resolved once, with the verification that will send it back still to come: just resolved.
    pending_rework = (first_resolved != NEVER) & (reworked == NEVER)
    resolved[pending_rework] = first_resolved[pending_rework]
    first_resolved[pending_rework] = NEVER

    status = np.full(count, STATUSES.index("reported"), dtype=np.int16)
    for name, column in [("accepted", accepted), ("rejected", rejected_at), ("dispatched", dispatched),
                         ("in_progress", started), ("registered", registered), ("in_progress", resumed),
                         ("resolved", resolved), ("verified", verified), ("closed", closed)]:  # fmt: skip
        status[column != NEVER] = STATUSES.index(name)
    status[(reworked != NEVER) & (resolved == NEVER)] = STATUSES.index("in_progress")
    handling = sum((column != NEVER).astype(np.int16) for column in escalated).astype(np.int16)

    handler_table = np.array([people.department_handlers[d] for d in all_departments])
    handler = np.where(
        self_handled, member, handler_table[department_row, rng.integers(0, handler_table.shape[1], count)]
    )
    operator = people.township_operator[grid_index]
    verifier = np.where(member > 0, member, operator)

    description_offset = np.cumsum([0] + [len(CATEGORY_MODELS[c.code].descriptions) for c in categories])
    description_count = np.diff(description_offset)[category]
    description = (description_offset[category] + (rng.random(count) * description_count).astype(int)).astype(
        np.int16
    )

    ids = np.arange(first_id, first_id + count, dtype=np.int64)
    return {
        "id": ("bigint", ids),
        "grid_id": ("integer", (grid_index + 1).astype(np.int32)),  # grid ids are area index + 1
        "lon": ("double precision", point[:, 0]),
        "lat": ("double precision", point[:, 1]),
        "accuracy_m": ("double precision", accuracy),
        "category": ("smallint", category),
        "description": ("smallint", description),
        "channel": ("smallint", channel),
        "reporter_id": ("integer", reporter.astype(np.int32)),
        "reporter_name": ("smallint", reporter_name),
        "status": ("smallint", status),
        "priority": ("smallint", priority.astype(np.int16)),
        "department_id": ("integer", np.where(dispatched != NEVER, department, 0).astype(np.int32)),
        "handling_level": ("smallint", handling),
        # Set by the self_handle step itself, so only once the member has resolved the case.
        "self_handled": (
            "boolean",
            (self_handled & ((resolved != NEVER) | (first_resolved != NEVER))).astype(np.uint8),
        ),
        "rework_count": ("smallint", (reworked != NEVER).astype(np.int16)),
        "extension_count": ("smallint", (extended_at != NEVER).astype(np.int16)),
        "rating": ("smallint", np.where(rated != NEVER, rating, 0).astype(np.int16)),
        "operator_id": ("integer", operator.astype(np.int32)),
        "handler_id": ("integer", handler.astype(np.int32)),
        "verifier_id": ("integer", verifier.astype(np.int32)),
        "reported_at": ("timestamptz", reported),
        "accepted_at": ("timestamptz", accepted),
        "rejected_at": ("timestamptz", rejected_at),
        # The incident's: the clock's start, the dispatch or the resumption after the register.
        "dispatched_at": ("timestamptz", np.where(resumed != NEVER, resumed, dispatched)),
        "first_dispatched_at": ("timestamptz", dispatched),  # the dispatch step's
        "started_at": ("timestamptz", started),
        "registered_at": ("timestamptz", registered),
        "resumed_at": ("timestamptz", resumed),
        "extended_at": ("timestamptz", extended_at),
        **{
            f"escalated_{level}_at": ("timestamptz", at)
            for level, at in zip(HANDLING_LEVELS[1:], escalated, strict=True)
        },
        "first_due_at": ("timestamptz", first_due),  # the due time the dispatch set
        "due_at": ("timestamptz", due),
        "first_resolved_at": ("timestamptz", first_resolved),
        "reworked_at": ("timestamptz", reworked),
        "resolved_at": ("timestamptz", resolved),
        "verified_at": ("timestamptz", verified),
        "closed_at": ("timestamptz", closed),
        "rated_at": ("timestamptz", rated),
    }


# What the incidents table takes from the generated columns (sql/incidents.sql); the rest feeds
# the event log only.
STAGE_COLUMNS = (
    "id", "grid_id", "lon", "lat", "accuracy_m", "category", "description", "channel", "reporter_id",
    "reporter_name", "status", "priority", "department_id", "handling_level", "self_handled", "rework_count",
    "extension_count", "rating", "reported_at", "accepted_at", "rejected_at", "dispatched_at", "due_at",
    "registered_at", "resolved_at", "verified_at", "closed_at", "rated_at",
)  # fmt: skip
_STEP_COLUMNS = (
    "reported_at", "accepted_at", "rejected_at", "dispatched_at", "started_at", "registered_at",
    "extended_at", "escalated_village_at", "escalated_township_at", "escalated_county_at", "reworked_at",
    "resolved_at", "verified_at", "closed_at", "rated_at",
)  # fmt: skip


def stage_columns(incidents: dict[str, tuple[str, np.ndarray]]) -> dict[str, tuple[str, np.ndarray]]:
    """The staging table's columns, with `updated_at`: the time of the last step taken."""
    steps = np.stack([incidents[name][1] for name in _STEP_COLUMNS])
    updated = np.where(steps == NEVER, np.iinfo(np.int64).min, steps).max(axis=0)
    return {name: incidents[name] for name in STAGE_COLUMNS} | {"updated_at": ("timestamptz", updated)}
