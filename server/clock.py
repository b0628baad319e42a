"""The one place the server reads the time for domain decisions (due times, warnings, rate limits).

Service functions take ``now`` as an argument; views pass ``clock.now()``. Tests move time by
installing a callable at ``app.extensions[CLOCK_KEY]``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import current_app, has_app_context

CLOCK_KEY = "gridwatch.clock"


def now() -> datetime:
    clock: Callable[[], datetime] | None = None
    if has_app_context():
        clock = current_app.extensions.get(CLOCK_KEY)
    return clock() if clock else datetime.now(UTC)
