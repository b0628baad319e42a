"""Two years of synthetic incidents with full workflow histories, generated as numpy columns.

Where: each category has its own weight per grid (sanitation near towns, straw burning on the
valley's farmland, flood and geohazards in the mountains) times a few hotspots, and a point is a
household of the grid moved by a category-dependent distance. When: a daily rate per category
with real seasonality (rice-straw burning in September–October, floods June–August, epidemics in
winter), fewer on weekends, by hour of day. How it went: every case is carried through the whole
workflow with delays that depend on its township's and department's speed; some are rejected,
self-handled by the grid member, extended, reworked or left on the books; then everything after
`until` is cut off, so the newest cases are still open.
"""

from __future__ import annotations

import numpy as np
import shapely

from server.demo.bulk import NEVER, US_PER_SECOND
from server.demo.categories import (
    CATEGORY_MODELS,
    HOUR_WEIGHT,
    STRAW_HOUR_WEIGHT,
    SURNAMES_FOR_CALLERS,
    Category,
    CategoryModel,
)
from server.demo.partition import Partition
from server.demo.people import People
from server.demo.settlements import KM_PER_DEGREE_LAT, KM_PER_DEGREE_LON

DAYS = 730
MINUTE = 60 * US_PER_SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
CHINA_OFFSET = 8 * HOUR  # Asia/Shanghai, no daylight saving

STATUSES = ["reported", "accepted", "rejected", "dispatched", "in_progress", "resolved", "verified", "closed"]
CHANNELS = ["app", "hotline_12345", "hotline_110", "wechat", "open311"]
CHANNEL_SHARE = [0.62, 0.18, 0.04, 0.12, 0.04]
PRIORITIES = ["low", "normal", "high", "urgent"]
HANDLING_LEVELS = ["grid", "village", "township", "county"]


def _daily_rate(model: CategoryModel, days_local: np.ndarray) -> np.ndarray:
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


def _lognormal(rng, median_us, sigma: float, size: int) -> np.ndarray:
    return (np.asarray(median_us, dtype=float) * rng.lognormal(0.0, sigma, size)).astype(np.int64)


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
) -> dict[str, tuple[str, np.ndarray]]:
    """Staging columns (name → (type, values)) for `count` incidents reported in the two years
    before `until_us` (µs since the Unix epoch)."""
    areas = partition.areas
    grids = partition.indices("grid")
    grid_households = np.array([areas[g].households for g in grids], dtype=float)
    urban = np.array([areas[g].urban for g in grids], dtype=float)
    rugged = np.array([areas[g].ruggedness for g in grids])
    centres = shapely.get_coordinates(shapely.centroid([areas[g].geom for g in grids]))

    # -- what and when ------------------------------------------------------------------
    first_day = until_us // DAY - DAYS
    days = np.arange(first_day, first_day + DAYS)
    trend = 1 + 0.1 * (days - first_day) / 365  # reporting grows as the system beds in
    rates = np.array(
        [
            CATEGORY_MODELS[c.code].share * _daily_rate(CATEGORY_MODELS[c.code], days) * trend
            for c in categories
        ]
    )
    cells = rng.choice(rates.size, size=count, p=(rates / rates.sum()).ravel())
    category = (cells // DAYS).astype(np.int16)
    straw = category == [c.code for c in categories].index("straw_burning")
    hour = np.where(
        straw,
        rng.choice(24, size=count, p=STRAW_HOUR_WEIGHT / STRAW_HOUR_WEIGHT.sum()),
        rng.choice(24, size=count, p=HOUR_WEIGHT / HOUR_WEIGHT.sum()),
    )
    local = days[cells % DAYS] * DAY + hour * HOUR + rng.integers(0, HOUR, count)
    reported = np.minimum(local - CHINA_OFFSET, until_us - 1)
    order = np.argsort(reported, kind="stable")  # ids follow report time, as in real life
    category, reported = category[order], reported[order]

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
    # The workflow of server/incidents/workflow.py: accept → dispatch (due = limit) → start →
    # resolve → verify (or rework → resolve again) → close → rate; or reject; or the grid
    # member's self_handle (straight to resolved). Overdue cases escalate one level at the due
    # time and one more for each further time limit, as escalate_overdue() does.
    township_speed = rng.lognormal(0.0, 0.35, len(areas))  # used at township indices only
    speed = township_speed[partition.township_of()[grid_index]]
    all_departments = np.array(sorted(people.department_handlers))
    department = np.array([c.department_id for c in categories])[category]
    elsewhere = rng.random(count) < 0.06  # a case that another department's duties cover
    department[elsewhere] = rng.choice(all_departments, size=int(elsewhere.sum()))
    department_row = np.searchsorted(all_departments, department)
    slowness = speed * rng.lognormal(0.0, 0.3, len(all_departments))[department_row]
    limit = np.array([c.time_limit_us for c in categories])[category]
    base_priority = np.array([PRIORITIES.index(c.priority) for c in categories])[category]
    priority = np.clip(base_priority + rng.choice([-1, 0, 1], size=count, p=[0.08, 0.84, 0.08]), 0, 3)

    # Reports at night wait for the morning shift.
    local_hour = ((reported + CHINA_OFFSET) % DAY) / HOUR
    night_wait = np.where(local_hour >= 20, 32.5 - local_hour, np.where(local_hour < 8, 8.5 - local_hour, 0))
    first_look = reported + (night_wait * HOUR).astype(np.int64)
    rejected = rng.random(count) < np.where(by_app, 0.02, 0.07)
    self_share = np.array([CATEGORY_MODELS[c.code].self_handled for c in categories])[category]
    self_handled = ~rejected & by_app & (rng.random(count) < self_share)
    dispatched_case = ~rejected & ~self_handled

    accepted = first_look + _lognormal(rng, 25 * MINUTE * speed, 0.9, count)
    dispatched = accepted + _lognormal(rng, 45 * MINUTE * speed, 0.9, count)
    started = dispatched + _lognormal(rng, HOUR * slowness, 1.0, count)
    due_first = dispatched + limit
    work = np.where(
        self_handled,
        _lognormal(rng, 1.5 * HOUR * speed, 0.8, count),
        _lognormal(rng, 0.3 * limit * slowness, 0.75, count),
    )
    shelved = dispatched_case & (rng.random(count) < 0.008)  # 挂账: on the books for months
    work = np.where(shelved, work * 40 + 60 * DAY, work)
    done = np.where(self_handled, first_look + work, started + work)
    extended_at = dispatched + (0.6 * limit).astype(np.int64)
    extended = dispatched_case & (rng.random(count) < 0.03) & (extended_at < done)
    due = np.where(extended, due_first + limit, due_first)
    extended_at = np.where(extended, extended_at, NEVER)
    due = np.where(extended & (extended_at > until_us), due_first, due)
    reworked_case = ~rejected & (rng.random(count) < 0.05)
    first_resolved = np.where(reworked_case, done, NEVER)
    reworked = np.where(reworked_case, done + _lognormal(rng, 3 * HOUR, 0.8, count), NEVER)
    resolved = np.where(reworked_case, reworked + work // 2, done)
    # Verification and closing keep pace with the time limit: a 4-hour case is checked within the hour.
    verified = resolved + _lognormal(rng, np.minimum(3 * HOUR, 0.12 * limit), 0.8, count)
    closed = verified + _lognormal(rng, np.minimum(1.5 * HOUR, 0.06 * limit), 0.7, count)
    rated = np.where(rng.random(count) < 0.55, closed + _lognormal(rng, 20 * HOUR, 0.8, count), NEVER)
    rating = np.where(
        closed > due,
        rng.choice([1, 2, 3, 4, 5], size=count, p=[0.08, 0.12, 0.25, 0.30, 0.25]),
        rng.choice([1, 2, 3, 4, 5], size=count, p=[0.02, 0.04, 0.12, 0.32, 0.50]),
    )
    escalated_at = np.where(dispatched_case & (done > due), due, NEVER)
    escalated_again_at = np.where(
        dispatched_case & (done > due + (due - dispatched)), due + (due - dispatched), NEVER
    )

    # Each kind of case skips the steps it never takes.
    rejected_at = np.where(rejected, accepted, NEVER)
    for column in (accepted, dispatched, started, due, extended_at, escalated_at, escalated_again_at):
        column[~dispatched_case] = NEVER
    for column in (first_resolved, reworked, resolved, verified, closed, rated):
        column[rejected] = NEVER

    # Cut at `until`: what has not happened yet is not known.
    steps = (accepted, rejected_at, dispatched, started, extended_at, escalated_at, escalated_again_at,
             first_resolved, reworked, resolved, verified, closed, rated)  # fmt: skip
    for column in steps:
        column[column > until_us] = NEVER
    due[dispatched == NEVER] = NEVER  # a due time is known from the dispatch on
    # Resolved once, with the verification that will send it back still to come: just resolved.
    pending_rework = (first_resolved != NEVER) & (reworked == NEVER)
    resolved[pending_rework] = first_resolved[pending_rework]
    first_resolved[pending_rework] = NEVER

    status = np.full(count, STATUSES.index("reported"), dtype=np.int16)
    for name, column in [("accepted", accepted), ("rejected", rejected_at), ("dispatched", dispatched),
                         ("in_progress", started), ("resolved", resolved), ("verified", verified),
                         ("closed", closed)]:  # fmt: skip
        status[column != NEVER] = STATUSES.index(name)
    status[(reworked != NEVER) & (resolved == NEVER)] = STATUSES.index("in_progress")
    handling = ((escalated_at != NEVER).astype(np.int16) + (escalated_again_at != NEVER)).astype(np.int16)

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
        "dispatched_at": ("timestamptz", dispatched),
        "started_at": ("timestamptz", started),
        "extended_at": ("timestamptz", extended_at),
        "escalated_at": ("timestamptz", escalated_at),
        "escalated_again_at": ("timestamptz", escalated_again_at),
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
    "resolved_at", "verified_at", "closed_at", "rated_at",
)  # fmt: skip
_STEP_COLUMNS = (
    "reported_at", "accepted_at", "rejected_at", "dispatched_at", "started_at", "extended_at", "escalated_at",
    "escalated_again_at", "reworked_at", "resolved_at", "verified_at", "closed_at", "rated_at",
)  # fmt: skip


def stage_columns(incidents: dict[str, tuple[str, np.ndarray]]) -> dict[str, tuple[str, np.ndarray]]:
    """The staging table's columns, with `updated_at`: the time of the last step taken."""
    steps = np.stack([incidents[name][1] for name in _STEP_COLUMNS])
    updated = np.where(steps == NEVER, np.iinfo(np.int64).min, steps).max(axis=0)
    return {name: incidents[name] for name in STAGE_COLUMNS} | {"updated_at": ("timestamptz", updated)}
