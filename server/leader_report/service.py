"""Making a report: the period (last calendar month by default), the figures, the file."""

from __future__ import annotations

import importlib
import os
import tempfile
import threading
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg

from server.analytics.period import Period, add_months, calendar_zone
from server.leader_report.figures import ReportRequest, gather
from server.settings import Settings

STEPS = ("indicators", "grids and cases", "trend", "maps", "render")
# What a report imports on its way: folium and plotly (the rendering), esda and its kin (Gi*).
HEAVY_MODULES = ("server.leader_report.render", "esda", "libpysal.weights", "scipy.stats")


def import_in_background() -> threading.Thread:
    """Import ``HEAVY_MODULES`` on a thread, for a process that is about to make a report: their
    four seconds of CPU overlap the first queries' waiting. An import of one of them on the main
    thread meanwhile waits for it (Python's import lock) instead of repeating it."""
    thread = threading.Thread(
        target=lambda: [importlib.import_module(name) for name in HEAVY_MODULES], daemon=True
    )
    thread.start()
    return thread


def last_month(now: datetime, zone) -> tuple[date, date]:
    first_of_this = now.astimezone(zone).date().replace(day=1)
    return add_months(first_of_this, -1), first_of_this


def make_report(
    conn: psycopg.Connection,
    *,
    start: date | None,
    end: date | None,
    area: str | None,
    lang: str,
    made_by: str,
    settings: Settings,
    now: datetime,
    step=lambda name: None,
) -> tuple[str, str]:
    """The report's HTML and its file name (ASCII: the area's code and the period's days)."""
    zone = calendar_zone(conn)
    if start is None and end is None:
        start, end = last_month(now, zone)
    period = Period.of(start=start, end=end, as_of=now, zone=zone)
    data = gather(conn, ReportRequest(period=period, area=area, made_by=made_by), step=step)
    step("render")
    # folium and plotly take a second to import: only a process that makes a report pays it.
    from server.leader_report.render import render_report

    basemap = (
        {"url": settings.basemap_url, "attribution": settings.basemap_attribution}
        if settings.basemap_url
        else None
    )
    html = render_report(data, lang=lang, made_at=now, basemap=basemap)
    last_day = period.end - timedelta(days=1)
    days = f"{period.start.isoformat()}-{last_day.isoformat()}"
    name = f"gridwatch-report-{data['area']['code']}-{days}-{lang}.html"
    return html, name


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, renamed when complete."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
