"""How often and how fast the demo county's cases take each turn of the workflow: one set of
numbers for the generated history (incidents.py, vectorised over all cases) and the live county
(live.py, one case at a time), so that after a load `demo live` moves cases at the pace of the two
years before it. Times are µs, as everywhere in the demo's generators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.demo.bulk import US_PER_SECOND

MINUTE = 60 * US_PER_SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
CHINA_OFFSET = 8 * HOUR  # Asia/Shanghai, no daylight saving


@dataclass(frozen=True)
class Pace:
    # -- which way: shares of cases ----------------------------------------------------------
    reject_app: float = 0.02  # of app reports (grid members know what is in scope)
    reject_other: float = 0.07  # of hotline, WeChat and Open311 reports
    other_department: float = 0.06  # the duties of another department than the category's cover it
    register: float = 0.012  # 挂账: on the register for months
    extend: float = 0.2  # of the cases that would run late, those extended in time
    rework: float = 0.05  # verification fails once
    rated: float = 0.55  # the resident rates the closed case
    self_handled: float = 1.0  # times each category's share of app reports the member handles
    # The live county only (the history has no duplicates and no returns):
    repeat_report: float = 0.03  # a second report of an open case nearby (a duplicate)
    link_duplicate: float = 0.8  # of filings the service flags as a possible duplicate
    returned: float = 0.02  # dispatched to a department whose duties it is not: returned

    # -- how fast: log-normal delays, (median µs, sigma) ----------------------------------------
    # Scaled by the township's speed (the centre's steps) or the department's slowness (its own).
    accept: tuple[int, float] = (40 * MINUTE, 0.9)
    dispatch: tuple[int, float] = (70 * MINUTE, 0.9)
    # Departments start and work in working time for working-time categories.
    start: tuple[int, float, float] = (HOUR, 0.1, 1.0)  # (cap, share of the limit, sigma)
    work_share: tuple[float, float] = (0.35, 0.9)  # of the time limit
    urgent_work_share: float = 0.2  # emergencies (round the clock, below) are dealt with at once
    # Past its due time a case is supervised (督办): done within this share of a limit after it.
    supervised: tuple[float, float] = (0.8, 0.7)
    self_handle: tuple[int, float] = (90 * MINUTE, 0.8)
    rework_after: tuple[int, float] = (3 * HOUR, 0.8)
    # Starting, verification and closing keep pace with the time limit: a 4-hour case is checked
    # within the hour. The median is the smaller of the cap and the share.
    verify: tuple[int, float, float] = (3 * HOUR, 0.12, 0.8)  # (cap, share of the limit, sigma)
    close: tuple[int, float, float] = (3 * HOUR, 0.1, 0.7)
    rate_after: tuple[int, float] = (20 * HOUR, 0.8)
    registered_for: tuple[int, float] = (50 * DAY, 0.6)
    return_after: tuple[int, float] = (2 * HOUR, 0.8)

    # -- when: the grid centre's day shift, China time ------------------------------------------
    # Its steps (accept, dispatch, register, resume, close) wait for the shift; what comes in at
    # night is taken up after the morning meeting. Emergencies (calendar limits up to
    # `round_the_clock`) are handled at once, day and night, by the duty officer.
    duty_start: int = 8 * HOUR
    duty_end: int = 20 * HOUR
    morning: int = 8 * HOUR + 30 * MINUTE
    morning_spread: int = 40 * MINUTE
    round_the_clock: int = 12 * HOUR


PACE = Pace()


def lognormal(rng: np.random.Generator, median_us, sigma: float, size=None) -> np.ndarray:
    """Log-normal delays (µs, int64) around `median_us` (a number or an array)."""
    return (np.asarray(median_us, dtype=float) * rng.lognormal(0.0, sigma, size)).astype(np.int64)


def on_duty(times_us, spread: np.ndarray, pace: Pace = PACE) -> np.ndarray:
    """Each time, or the next morning's pick-up when it falls outside the centre's day shift.
    `spread` (0..1, one per time) places the pick-up within `pace.morning_spread`."""
    times_us = np.asarray(times_us, dtype=np.int64)
    time_of_day = (times_us + CHINA_OFFSET) % DAY
    night = (time_of_day < pace.duty_start) | (time_of_day >= pace.duty_end)
    morning = (
        times_us
        - time_of_day
        + np.where(time_of_day >= pace.duty_end, DAY, 0)
        + pace.morning
        + (np.asarray(spread) * pace.morning_spread).astype(np.int64)
    )
    return np.where(night, morning, times_us)
