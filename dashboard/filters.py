"""The filters every page shares (category and period), chosen in the shell's header.

A period is a key (``month``, ``3m``, ...) resolved against today's date in the county's time
zone, so a bookmark or a wall screen left open keeps meaning "this month" as months pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from dashboard.i18n import LOCAL_TIME

PERIODS = ("all", "month", "last_month", "3m", "year", "12m")
# How many whole months each period reaches back, counting the current month.
_MONTHS_BACK = {"month": 1, "3m": 3, "12m": 12}


@dataclass(frozen=True)
class Period:
    first_month: date  # the first day of the first month
    end_month: date  # the first day of the month after the last (exclusive)

    def tile_param(self) -> str:
        """The tiles' ``period`` filter: ``YYYY-MM..YYYY-MM`` (both months included)."""
        last = _add_months(self.end_month, -1)
        return f"{self.first_month:%Y-%m}..{last:%Y-%m}"

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as local-midnight instants, for ``reported_at`` comparisons."""
        return (
            datetime.combine(self.first_month, datetime.min.time(), LOCAL_TIME),
            datetime.combine(self.end_month, datetime.min.time(), LOCAL_TIME),
        )


def _add_months(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def resolve_period(key: str | None, now: datetime) -> Period | None:
    """The months a period key covers at ``now``; None for all time (or an unknown key)."""
    this_month = now.astimezone(LOCAL_TIME).date().replace(day=1)
    next_month = _add_months(this_month, 1)
    if key == "year":
        return Period(this_month.replace(month=1), next_month)
    if key == "last_month":
        return Period(_add_months(this_month, -1), this_month)
    if isinstance(key, str) and key in _MONTHS_BACK:
        return Period(_add_months(this_month, 1 - _MONTHS_BACK[key]), next_month)
    return None


def clean_categories(values, known: set[str]) -> list[str]:
    """The chosen category codes that exist, sorted (the tiles' cache key sorts them too)."""
    chosen = values if isinstance(values, list) else ()
    return sorted({value for value in chosen if isinstance(value, str) and value in known})


def local_midnight(now: datetime) -> datetime:
    """The start of today in the county's time zone ("new today", "closed today")."""
    return datetime.combine(now.astimezone(LOCAL_TIME).date(), datetime.min.time(), LOCAL_TIME)
