"""The service's one clock: every "now" and every "today" is read from it.

Rules ask "how many days ago", storage stamps cards and feedback, analytics ranges end
"today", tokens expire: all on the same UTC instant, so a test that pins the clock pins all
of them, and the suite passes on any date. Nothing else in the service reads the system time
(a test checks); durations measured with ``time.perf_counter`` are not dates and may.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

# Returns the current instant, timezone-aware, in UTC.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def today(clock: Clock) -> date:
    """The UTC day of ``clock``: days in storage, analytics and rules are UTC days."""
    return clock().date()


def at_noon(day: date) -> Clock:
    """A clock standing still at noon UTC of ``day``: what ``cds-service evaluate --today`` runs on."""
    instant = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return lambda: instant
