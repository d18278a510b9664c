"""What an order's dated bounds periods say of when dosing ran: the span they cover, when it
began, the instant it ended, and whether a period starts when the order was written.

A FHIR ``Period.end`` is the last day it covers, so a span counts both its ends (clinical
specification §1). How a period's end is read is the caller's (``LastDay``): a draft's planned
days by its days of use (``period_last_day``: 06:00Z to 06:00Z ends the day before), a history
course's end by its end's own date (``end_date``: a dose that morning may still be on board).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from cds_service.facts.dose import dosages_of
from cds_service.facts.together import bounds_period
from cds_service.fhir.json import period_last_day, to_date, to_end_date

Span = tuple[date, date]
LastDay = Callable[[dict[str, Any]], date | None]


def periods(dosages: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    return (bounds_period(dosage) for dosage in dosages)


def end_date(period: dict[str, Any]) -> date | None:
    """A period's end by its own date, whatever time of day it starts (a history course's end)."""
    return to_end_date(period.get("end"))


def dated_span(dosages: list[dict[str, Any]], authored: object, last_day: LastDay) -> Span | None:
    """The first and last day (inclusive) the bounds periods cover, from the earliest start to the
    latest end among the instructions that have both (a taper's steps); a period with an end alone
    starts when the order was written (``authored``): the end is still its last day (§1). A step
    that dates its start and no end after the first dated step has ended, before a step dated to
    begin after it and end, is a step of the taper the later end bounds (``ends_later``): 11-21..
    11-25, then 11-26 with no end, then 12-01..12-20, is 30 days (a quantity or supply saying
    longer is read too, ``facts.sig._planned_days``). None where a step with no end has none such
    after it, or begins by the first dated step's last day: it runs on, beside the taper or after
    it, and the bounds say no last day (the next source says how long, ``facts.steps.dated_tail``;
    a bedtime dose from 11-21 beside a taper to 11-30 had been read as ending with it: no card)."""
    dated = [(to_date(period.get("start")), last_day(period)) for period in periods(dosages)]
    opens = [start for start, end in dated if start and end is None]
    later = ended_steps(dated) if opens else None
    if any(not ends_later(start, later) for start in opens):
        return None
    if any(start is None and end for start, end in dated):
        dated = [(start or to_date(authored), end) for start, end in dated]
    spans = [(start, end) for start, end in dated if start and end and start <= end]
    return (min([start for start, _ in spans] + opens), max(end for _, end in spans)) if spans else None


class Ended(NamedTuple):
    """Of a taper's steps that date their start and give their last day (``ended_steps``)."""

    first_last: date  # the last day of the first of them (of those beginning first, the latest)
    latest: date  # the latest start among them


def ended_steps(dated: Iterable[tuple[date | None, date | None]]) -> Ended | None:
    """The first dated step's last day and the latest dated step's start (``dated``: each step's
    dated start and last day), or None where no step dates both. Found once, in one pass: a draft
    may carry thousands of instructions."""
    first: tuple[date, date] | None = None
    latest: date | None = None
    for begins, end in dated:
        if not (begins and end and begins <= end):
            continue
        latest = begins if latest is None or begins > latest else latest
        if first is None or begins < first[0] or (begins == first[0] and end > first[1]):
            first = (begins, end)
    return Ended(first[1], latest) if first is not None and latest is not None else None


def ends_later(start: date | None, ended: Ended | None) -> bool:
    """Is a step with no end from ``start`` bounded by the taper's last day (§1: a taper spans from
    the earliest start to the latest end)? Only between dated steps: it begins after the first
    dated step's last day, and a step dated to begin after it gives its last day. One that begins
    by the first step's last day runs beside the taper (a maintenance dose from day 1), and one
    after every dated start is its tail: both run on, the later steps' end does not bound them."""
    return start is not None and ended is not None and ended.first_last < start < ended.latest


def span_days(span: Span) -> float:
    return float((span[1] - span[0]).days + 1)


def bounds_start(dosages: list[dict[str, Any]]) -> date | None:
    """When dosing began by the bounds periods: the earliest start, only when every instruction
    dates its start and none ends before it (an undated first step, or a period that ends before
    it starts, says nothing of when dosing began)."""
    starts = []
    for period in periods(dosages):
        start, end = to_date(period.get("start")), period_last_day(period)
        if start is None or (end is not None and end < start):
            return None
        starts.append(start)
    return min(starts, default=None)


def bounds_end_instant(request: dict[str, Any]) -> datetime | None:
    """The latest bounds period end that is a time with a zone, in UTC."""
    instants = []
    for period in periods(dosages_of(request)):
        end = period.get("end")
        if isinstance(end, str) and len(end) > 10:
            try:
                moment = datetime.fromisoformat(end)
                if moment.tzinfo is not None:
                    instants.append(moment.astimezone(UTC))
            except (ValueError, OverflowError):  # not a whole dateTime, or past the calendar
                continue
    return max(instants, default=None)


def starts_when_written(request: dict[str, Any]) -> bool:
    """Does a bounds period end without a start (and so start on ``authoredOn``, ``dated_span``)?"""
    return any(to_date(p.get("start")) is None and to_end_date(p.get("end")) for p in periods(dosages_of(request)))


def last_day_taken(dosages: list[dict[str, Any]], authored: object, span: Span | None) -> date | None:
    """A history course's last day of use where it comes before its ``span``'s last day (read by
    its ends' own dates, ``end_date``): a period that ends at the time of day it starts ends the
    day before, as a draft's planned days are read (``period_last_day``). Its days taken count to
    it (``Course.taken_to``). None: the span's."""
    used = dated_span(dosages, authored, period_last_day) if span is not None else None
    return used[1] if used is not None and span is not None and used[1] < span[1] else None


def dated_in_the_last_year(request: dict[str, Any]) -> str | None:
    """What in the draft starts in the calendar's last year (9999), or None: no course counted from
    it ends within the calendar, and an update cut to it would be short (a 21-day limit from 25
    December 9999, with no end said, dispensed a week's tablets)."""
    late = any((start := to_date(p.get("start"))) and start.year == date.max.year for p in periods(dosages_of(request)))
    return "a bounds period starting in the year 9999" if late else None
