"""The service's one clock: every "now" and every "today" is read from it.

Rules ask "how many days ago", storage stamps cards and feedback, analytics ranges end
"today", tokens expire: all on the same UTC instant, so a test that pins the clock pins all
of them, and the suite passes on any date. Nothing else in the service reads the system time
(a test checks); durations measured with ``time.perf_counter`` are not dates and may.

"Today" is that instant's date in the site's time zone (``CDS_TIMEZONE``): record dates are the
site's own days, and a site west of UTC must not reach tomorrow in its evening (a phenelzine
course that ended 13 days ago would read as 14, and its critical card be lost).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

# Returns the current instant, timezone-aware, in UTC.
Clock = Callable[[], datetime]

# The days the service counts in: those its stamps can hold (feedback times are refused outside
# them). Near the year 1 or 9999 a window of days (a rule's, a report's period) runs off the calendar.
EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)

# A day as the report's filters and the command line's options ask for it. Python 3.11's
# ``date.fromisoformat`` also reads ISO 8601's basic (20261201) and week (2026-W49-1) forms:
# taken, a day the caller did not mean to write was counted from, where the message names one form.
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def calendar_day(text: str) -> date:
    """``text`` as a day written YYYY-MM-DD, the one form asked for; ValueError for any other."""
    if _DAY.fullmatch(text) is None:
        raise ValueError("not YYYY-MM-DD")
    return date.fromisoformat(text)


def _a_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a time zone name (IANA, e.g. America/New_York or UTC)") from None
    return name


# Where a site's days begin and end (CDS_TIMEZONE): a name zoneinfo knows.
TimeZoneName = Annotated[str, AfterValidator(_a_time_zone)]


def system_clock() -> datetime:
    return datetime.now(UTC)


def today(clock: Clock, zone: tzinfo = UTC) -> date:
    """The site's day at ``clock``'s instant: the rules' "today", storage's "the same day" and
    analytics' days."""
    return day_at(clock(), zone)


def day_at(instant: datetime, zone: tzinfo = UTC) -> date:
    """The site's day at ``instant``, an instant already read from the clock (the patient's
    context is read at the one instant the request was evaluated at, not the clock again)."""
    return instant.astimezone(zone).date()


def at_noon(day: date, zone: tzinfo = UTC) -> Clock:
    """A clock standing still at noon of ``day`` in ``zone`` (its instant given in that zone): a
    pinned day for the goldens and the benchmarks (UTC), and ``evaluate --today`` (the site's)."""
    instant = datetime(day.year, day.month, day.day, 12, tzinfo=zone)
    return lambda: instant
