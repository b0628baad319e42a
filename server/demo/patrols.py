"""Patrol check-ins of grid members over the two years up to the day before the load (the load
day's own patrols are `demo live`'s): most walk their grid a couple of times a week (less in the
mountains); some stop for weeks now and then, a few have stopped lately, and grids without a
member are never walked. That is what the coverage layer has to reveal."""

from __future__ import annotations

import numpy as np
import shapely

from server.demo.bulk import Points
from server.demo.incidents import DAYS
from server.demo.pace import CHINA_OFFSET, DAY, HOUR, MINUTE
from server.demo.partition import Partition
from server.demo.people import People
from server.demo.settlements import KM_PER_DEGREE_LAT, KM_PER_DEGREE_LON


def generate_patrols(
    *, partition: Partition, households: np.ndarray, people: People, until_us: int, rng: np.random.Generator
) -> dict[str, tuple[str, np.ndarray]]:
    areas = partition.areas
    grids = np.array([g for g in partition.indices("grid") if people.grid_member[g] > 0])
    rugged = np.array([areas[g].ruggedness for g in grids])
    per_week = rng.lognormal(np.log(2.2) - 0.8 * rugged, 0.45)
    visits = rng.poisson(per_week * DAYS / 7)
    # The DAYS days (China time) before the day of `until_us`; `offset` counts from the first.
    first_us = ((until_us + CHINA_OFFSET) // DAY - DAYS) * DAY - CHINA_OFFSET
    window_us = DAYS * DAY

    # A break of 2-8 weeks somewhere for a quarter of the members; a few stopped recently.
    gap_start = rng.uniform(0, window_us, len(grids)).astype(np.int64)
    gap_length = (rng.integers(2, 9, len(grids)) * 7 * DAY).astype(np.int64)
    lately = rng.random(len(grids)) < 0.05
    gap_length[lately] = rng.integers(3, 9, int(lately.sum())) * 7 * DAY
    gap_start[lately] = window_us - gap_length[lately]
    has_gap = lately | (rng.random(len(grids)) < 0.25)

    which = np.repeat(np.arange(len(grids)), visits)
    day = rng.integers(0, DAYS, len(which))
    offset = day * DAY + rng.integers(8 * HOUR, 18 * HOUR, len(which))
    keep = ~(has_gap[which] & (offset >= gap_start[which]) & (offset < gap_start[which] + gap_length[which]))
    which, offset = which[keep], offset[keep]
    order = np.argsort(offset, kind="stable")
    which, offset = which[order], offset[order]
    started = first_us + offset
    ended = started + rng.integers(10 * MINUTE, 90 * MINUTE, len(which))

    grid_index = grids[which]
    home_order = np.argsort(partition.household_grid, kind="stable")
    home_start = np.searchsorted(partition.household_grid[home_order], grid_index)
    per_grid = np.array([area.households for area in areas])[grid_index]
    homes = households[home_order[home_start + (rng.random(len(which)) * per_grid).astype(np.int64)]]
    moved = homes + rng.normal(0, 0.03, (len(which), 2)) / (KM_PER_DEGREE_LON, KM_PER_DEGREE_LAT)
    geoms = np.array([area.geom for area in areas], dtype=object)
    inside = shapely.contains_xy(geoms[grid_index], moved[:, 0], moved[:, 1])
    point = np.where(inside[:, None], moved, homes)
    return {
        "user_id": ("integer", people.grid_member[grid_index].astype(np.int32)),
        "grid_id": ("integer", (grid_index + 1).astype(np.int32)),
        "started_at": ("timestamptz", started),
        "ended_at": ("timestamptz", ended),
        "geom": ("geometry", Points(point)),
    }
