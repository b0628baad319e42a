"""Reading a tile request: layer names, z/x/y and the fixed list of filters, normalised so that
equal requests share one cache key. Anything else is a 400 naming the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from layers.catalog import FILTERS, Layer, get_layer
from server.errors import InvalidInput, NotFound
from server.incidents.workflow import STATUSES

MAX_ZOOM = 22
_CATEGORY = re.compile(r"^[a-z0-9_]{2,40}$")
# Years 1900-2999 in ASCII digits: year 0 and the month after 9999-12 are not dates (a 500
# before), and \d would also match other scripts' digits.
_MONTH = re.compile(r"^(19[0-9]{2}|2[0-9]{3})-([0-9]{2})$")
_YEAR = re.compile(r"^(19[0-9]{2}|2[0-9]{3})$")


@dataclass(frozen=True)
class Filters:
    category: tuple[str, ...] | None = None
    status: tuple[str, ...] | None = None
    period: tuple[date, date] | None = None  # first day, first day after (exclusive)

    def present(self) -> tuple[str, ...]:
        return tuple(name for name in FILTERS if getattr(self, name) is not None)

    def as_sql_args(self) -> dict:
        return {
            "category": list(self.category) if self.category else None,
            "status": list(self.status) if self.status else None,
            "period_start": self.period[0] if self.period else None,
            "period_end": self.period[1] if self.period else None,
        }

    def canonical(self) -> str:
        """A stable text form (cache key, SSE, logs)."""
        parts = []
        if self.category:
            parts.append("category=" + ",".join(self.category))
        if self.status:
            parts.append("status=" + ",".join(self.status))
        if self.period:
            parts.append(f"period={self.period[0]:%Y-%m}..{_month_before(self.period[1]):%Y-%m}")
        return "&".join(parts)


def _month_before(first_of_month: date) -> date:
    return (
        date(first_of_month.year - 1, 12, 1)
        if first_of_month.month == 1
        else first_of_month.replace(month=first_of_month.month - 1)
    )


def _next_month(first_of_month: date) -> date:
    if first_of_month.month == 12:
        return date(first_of_month.year + 1, 1, 1)
    return first_of_month.replace(month=first_of_month.month + 1)


def parse_layers(names: str) -> tuple[Layer, ...]:
    layers = []
    for name in names.split(","):
        layer = get_layer(name)
        if layer is None:
            raise NotFound(f"no layer named {name!r}", field="layer")
        if layer not in layers:
            layers.append(layer)
    return tuple(layers)


def parse_zxy(z: str, x: str, y: str) -> tuple[int, int, int]:
    values = {}
    for field, text in (("z", z), ("x", x), ("y", y)):
        if not (text.isascii() and text.isdigit()) or len(text) > 8:
            raise InvalidInput(f"{field} must be a non-negative integer", field=field)
        values[field] = int(text)
    if values["z"] > MAX_ZOOM:
        raise InvalidInput(f"z must be at most {MAX_ZOOM}", field="z")
    size = 2 ** values["z"]
    for field in ("x", "y"):
        if values[field] >= size:
            raise InvalidInput(f"{field} must be below 2^z = {size}", field=field)
    return values["z"], values["x"], values["y"]


def _parse_month(text: str, field: str) -> date:
    match = _MONTH.match(text)
    if not match or not 1 <= int(match[2]) <= 12:
        raise InvalidInput("period is YYYY, YYYY-MM or YYYY-MM..YYYY-MM", field=field)
    return date(int(match[1]), int(match[2]), 1)


def _parse_period(text: str) -> tuple[date, date]:
    if _YEAR.match(text):
        return date(int(text), 1, 1), date(int(text) + 1, 1, 1)
    first, _, last = text.partition("..")
    start = _parse_month(first, "period")
    end = _next_month(_parse_month(last, "period") if last else start)
    if end <= start:
        raise InvalidInput("the period ends before it starts", field="period")
    return start, end


def _parse_list(text: str, field: str, allowed) -> tuple[str, ...]:
    values = sorted({value.strip() for value in text.split(",") if value.strip()})
    if not values:
        raise InvalidInput(f"{field} is empty", field=field)
    for value in values:
        if not allowed(value):
            raise InvalidInput(f"unknown {field} {value!r}", field=field)
    return tuple(values)


def parse_filters(args, layers: tuple[Layer, ...]) -> Filters:
    """``args`` is the request's query string (a MultiDict)."""
    for name in args:
        if name not in FILTERS:
            raise InvalidInput(f"unknown parameter {name!r}; allowed: {', '.join(FILTERS)}", field=name)
        if len(args.getlist(name)) > 1:
            raise InvalidInput(f"{name} given more than once; use a comma-separated list", field=name)
        if not any(name in layer.filters for layer in layers):
            raise InvalidInput(f"no requested layer takes the {name} filter", field=name)
    return Filters(
        category=_parse_list(args["category"], "category", _CATEGORY.match) if "category" in args else None,
        status=_parse_list(args["status"], "status", STATUSES.__contains__) if "status" in args else None,
        period=_parse_period(args["period"]) if "period" in args else None,
    )
