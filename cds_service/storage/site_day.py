"""The day where the site is (``CDS_TIMEZONE``) of a stored time, in SQL: analytics count an
alert on the site's day, as the rules count theirs, on PostgreSQL and SQLite alike.

Stored times are UTC. PostgreSQL converts them itself (``timezone``); SQLite knows no time zones,
so each connection is given a function that does (``define_in_sqlite``). The zone is written into
the statement as a literal: in a parameter, PostgreSQL could not tell a SELECT's day and its GROUP
BY's are the same expression, and SQLAlchemy's statement cache, which keys a statement without its
parameters' values, would serve one zone's SQL for another's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Date, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

_STORED = len("2026-11-21 10:15:00.000000")  # a time as SQLAlchemy writes it to SQLite


class _SiteDay(FunctionElement[date]):
    type = Date()
    inherit_cache = True
    name = "site_day"


def site_day(stamp: ColumnElement[Any], zone: str) -> ColumnElement[date]:
    """The day in ``zone`` (an IANA name, or UTC) of the stored UTC time ``stamp``."""
    return _SiteDay(stamp, literal_column("'" + zone.replace("'", "''") + "'"))


@compiles(_SiteDay, "postgresql")
def _in_postgresql(element: _SiteDay, compiler: SQLCompiler, **kw: Any) -> str:
    stamp, zone = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"date(timezone({zone}, {stamp}))"


@compiles(_SiteDay, "sqlite")
def _in_sqlite(element: _SiteDay, compiler: SQLCompiler, **kw: Any) -> str:
    stamp, zone = (compiler.process(clause, **kw) for clause in element.clauses)
    if zone == "'UTC'":  # SQLite's own date(): five times as fast as a function in Python
        return f"date({stamp})"
    return f"site_day({stamp}, {zone})"


def define_in_sqlite(connection: Any) -> None:
    """``site_day(stamp, zone)`` on a new SQLite connection (the DB-API's, as it connects)."""
    connection.create_function("site_day", 2, day_at_site, deterministic=True)


def day_at_site(stamp: str | None, zone: str) -> str | None:
    """A UTC time as SQLite stores it (``2026-11-21 10:15:00.000000``), as the site's day: its
    time compared with where the site's days begin within its UTC day (a report reads every card
    of its range, and each read through zoneinfo cost more than the query)."""
    if stamp is None:
        return None
    if len(stamp) != _STORED:  # not as SQLAlchemy writes them: read in full
        at = datetime.fromisoformat(stamp)
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(_zone(zone)).date().isoformat()
    clock, day = stamp[11:], ""
    for since, begun in _site_days(stamp[:10], zone):
        if clock < since:
            break
        day = begun
    return day


@lru_cache(maxsize=4096)
def _site_days(utc_day: str, zone: str) -> tuple[tuple[str, str], ...]:
    """The site's days within one UTC day: from which time (as stored) each runs, in order."""
    start = datetime.fromisoformat(utc_day).replace(tzinfo=UTC)
    first = start.astimezone(_zone(zone)).date()
    days = [("", first.isoformat())]
    for later in (first + timedelta(days=1), first + timedelta(days=2)):
        begins = datetime.combine(later, time.min, _zone(zone)).astimezone(UTC)
        if start < begins < start + timedelta(days=1):
            days.append((begins.strftime("%H:%M:%S.%f"), later.isoformat()))
    return tuple(days)


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
