"""The day where the site is (``CDS_TIMEZONE``) of a stored time, in SQL: analytics count an
alert on the site's day, as the rules count theirs, on PostgreSQL and SQLite alike.

Stored times are UTC. Over a report's range the site is at one offset from UTC, or a few
(daylight saving), each from a known instant; Python's time zone data says which, and the SQL
adds the offset of its row's instant before taking the date. The database's own zone data is
never asked: SQLite has none, and PostgreSQL reads ``CET`` or ``WET`` as fixed abbreviations
where zoneinfo has daylight saving (and its data may be another release than Python's). The
offsets are written into the statement as literals: as parameters, PostgreSQL could not tell a
SELECT's day and its GROUP BY's are the same expression.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Any

from sqlalchemy import ColumnElement, Date
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

# How far apart the offset is looked at: no zone has changed its offset twice within a few hours.
_STEP = timedelta(hours=6)
# (the instant from which the offset holds, None for the range's start; the offset in seconds)
Offsets = tuple[tuple[datetime | None, int], ...]


class _SiteDay(FunctionElement[date]):
    type = Date()
    inherit_cache = False  # the offsets are not parameters: a statement of its own per range and zone
    name = "site_day"

    def __init__(self, stamp: ColumnElement[Any], offsets: Offsets) -> None:
        super().__init__(stamp)
        self.offsets = offsets


def site_day(stamp: ColumnElement[Any], zone: tzinfo, start: datetime, end: datetime) -> ColumnElement[date]:
    """The site's day of the stored UTC time ``stamp``, for times in [``start``, ``end``)."""
    return _SiteDay(stamp, offsets(zone, start, end))


def offsets(zone: tzinfo, start: datetime, end: datetime) -> Offsets:
    """The zone's offsets from UTC over [start, end), each from the instant it begins."""
    found: list[tuple[datetime | None, int]] = [(None, _offset(zone, start))]
    at = start
    while at < end:
        later = min(at + _STEP, end)
        if _offset(zone, later) != found[-1][1]:
            begins = _change(zone, at, later)
            if begins < end:  # a change at the range's end is no row's
                found.append((begins, _offset(zone, begins)))
        at = later
    return tuple(found)


def _offset(zone: tzinfo, at: datetime) -> int:
    offset = at.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _change(zone: tzinfo, before: datetime, after: datetime) -> datetime:
    """The first whole second in (before, after] at the offset ``after`` has (zones change on one)."""
    low, high = int(before.timestamp()), int(after.timestamp())
    target = _offset(zone, after)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(zone, datetime.fromtimestamp(middle, UTC)) == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


@compiles(_SiteDay, "postgresql")
def _in_postgresql(element: _SiteDay, compiler: SQLCompiler, **kw: Any) -> str:
    stamp = compiler.process(element.clauses, **kw)
    shift = _chosen(element.offsets, stamp, "TIMESTAMPTZ '{}'", "INTERVAL '{} seconds'", "%Y-%m-%d %H:%M:%S+00")
    # The UTC wall time, whatever zone the session is in (a pooler may reset the engine's UTC).
    utc = f"({stamp} AT TIME ZONE 'UTC')"
    return f"date({utc} + {shift})" if shift else f"date({utc})"


@compiles(_SiteDay, "sqlite")
def _in_sqlite(element: _SiteDay, compiler: SQLCompiler, **kw: Any) -> str:
    stamp = compiler.process(element.clauses, **kw)
    # Stored as text, as SQLAlchemy writes it: "2026-11-21 10:15:00.000000" compares as the time
    # does. Its date is taken of the whole seconds: SQLite rounds to milliseconds, and 23:59:59.9999
    # would be the next day. No zone's day begins within a second.
    shift = _chosen(element.offsets, stamp, "'{}'", "'{} seconds'", "%Y-%m-%d %H:%M:%S.%f")
    seconds = f"substr({stamp}, 1, 19)"
    return f"date({seconds}, {shift})" if shift else f"date({seconds})"


def _chosen(offsets: Offsets, stamp: str, instant: str, seconds: str, written: str) -> str | None:
    """The SQL of the row's offset (None: none, at UTC): a CASE over the instants it changes at."""
    if offsets == ((None, 0),):
        return None
    if len(offsets) == 1:
        return seconds.format(offsets[0][1])
    whens = " ".join(
        f"WHEN {stamp} < {instant.format(begins.strftime(written))} THEN {seconds.format(offset)}"
        for (_, offset), (begins, _) in pairwise(offsets)
        if begins is not None
    )
    return f"CASE {whens} ELSE {seconds.format(offsets[-1][1])} END"
