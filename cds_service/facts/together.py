"""Which of an order's dosage instructions are taken together, and which one after another: the
one reading that adds up a day's units (``facts.dose.units_per_day``), shares a daily cap among
instructions (the 5 mg swap), cuts a taper by days (the duration update) and counts one
(``rules.taper_count``). Two readings had let the swap keep three tablets a day on each of two
instructions dated the same ten days, six a day under a "three times a day" label. And on which
days of the week an instruction is taken (``dayOfWeek``), which what a quantity lasts counts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from cds_service.fhir.json import as_int, as_list, as_obj, period_last_day, to_date

# A dated step's first and last day (``date.max``: it runs on).
DatedDays = tuple[date, date]


def bounds_period(dosage: dict[str, Any]) -> dict[str, Any]:
    return as_obj(as_obj(as_obj(dosage.get("timing")).get("repeat")).get("boundsPeriod"))


def step_group(dosage: dict[str, Any], index: int) -> object:
    """Which instructions run together by ``sequence`` alone: those sharing one; one without runs
    alone (several without are a taper's steps, one after another: clinical specification §1)."""
    sequence = dosage.get("sequence")
    if type(sequence) is not int:  # 1.0 or "1" (as the R4 model reads them) is 1 too
        sequence = as_int(sequence)
    return sequence if sequence is not None else ("step", index)


def dated_days(dosages: list[dict[str, Any]]) -> list[DatedDays] | None:
    """Each instruction's first and last day, where every one dates its start (``boundsPeriod``)
    and none is in a ``sequence``: such steps are placed by their dates, not one after another.
    None otherwise. One instruction's ``sequence`` orders nothing (Epic writes ``1`` on every
    sig): read by its length, a duration update dropped its start, a course dated to begin next
    week made to begin today."""
    if not dosages or (len(dosages) > 1 and any("sequence" in dosage for dosage in dosages)):
        return None
    return _spans(dosages)


def own_last_days(spans: list[DatedDays]) -> list[date]:
    """Each dated step's last day of its own: the day before its last where another step begins
    on it. EHRs end a taper's step on the next one's first day; that day is the next step's, as
    a period ending at the very time the next begins ends the day before (``period_last_day``).
    Counted in both, a taper of 12-01..12-05 then 12-05..12-10 took eleven days' tablets for ten."""
    starts = {start for start, _ in spans}
    return [last - timedelta(days=1) if last in starts and last > start else last for start, last in spans]


def _spans(dosages: list[dict[str, Any]]) -> list[DatedDays] | None:
    """Each instruction's first and last day (``_last_day``), None where one dates no start; read in
    one offset (``_in_one_offset``)."""
    periods = _in_one_offset([bounds_period(dosage) for dosage in dosages])
    starts = [to_date(period.get("start")) for period in periods]
    if any(start is None for start in starts):
        return None
    return [(start, _last_day(period, start)) for period, start in zip(periods, starts, strict=True) if start]


def _in_one_offset(periods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The periods as written; where their times are written in more than one offset, every time
    read in UTC. A step ending 2026-12-10T01:00:00Z and the next beginning 2026-12-09T20:00:00-05:00,
    the same instant, read on their own dates overlapped by a day: no swap was offered."""
    if not any(type(value) is str and len(value) > 10 for period in periods for value in period.values()):
        return periods  # dates alone (nearly every order): at no cost
    offsets = {moment.utcoffset() for period in periods for value in period.values() if (moment := _zoned(value))}
    if len(offsets) < 2:
        return periods
    return [{key: _in_utc(value) for key, value in period.items()} for period in periods]


def _zoned(value: Any) -> datetime | None:
    """A dateTime with its offset, or None (a date, a time with none, not a dateTime at all)."""
    if type(value) is not str or len(value) <= 10:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _in_utc(value: Any) -> Any:
    moment = _zoned(value)
    if moment is None:
        return value
    try:
        return moment.astimezone(UTC).isoformat()
    except OverflowError:  # past the calendar's last instant: as written
        return value


def groups(dosages: list[dict[str, Any]]) -> list[object]:
    """Each instruction's group, those taken together sharing one: steps placed by their dates
    (``dated_days``) run together over the same days (morning and evening, ten days each); the
    others by ``sequence``. Steps one after another, or touching on the day one ends and the next
    begins (EHRs end a taper's step so), are a taper's. Steps overlapping only in part are read as
    steps, and a dose change of them is not offered (``runs_partly_together``): sharing the cap
    over all their days dropped a taper's tail, keeping one each gave six tablets a day."""
    spans = dated_days(dosages)
    if spans is None:
        return [step_group(dosage, index) for index, dosage in enumerate(dosages)]
    return [("dated", start, last) for start, last in spans]


def runs_partly_together(dosages: list[dict[str, Any]]) -> bool:
    """Do dated steps run together on some days but not all: one starts while another runs (past
    the day it ends), or after one with no end, or the same day with another end? Or do their
    ``sequence`` and their dates disagree (one sequence over two spans, two over one)? What one
    tablet three times a day "in all" would be on each day, no one sig says: the swap is not
    offered. A ``sequence`` beside the dates had let six tablets a day through."""
    spans = _spans(dosages) if len(dosages) > 1 else None
    if spans is None:
        return False
    if any("sequence" in dosage for dosage in dosages):
        pairs = {
            (step_group(dosage, index), span) for index, (dosage, span) in enumerate(zip(dosages, spans, strict=True))
        }
        if len({key for key, _ in pairs}) != len(pairs) or len({span for _, span in pairs}) != len(pairs):
            return True
    begun, running = date.min, date.min  # the latest start so far, the furthest last day so far
    for start, last in sorted(set(spans)):  # distinct spans: the same start twice has two ends
        if start == begun or start < running:
            return True
        begun, running = start, max(running, last)
    return False


def runs_on_into_another(dosages: list[dict[str, Any]]) -> bool:
    """Does a dated step with no end run on into another step's days (one beginning on or after
    its start, with other dates)? Whether it stops when the next begins, no date says: a limit
    ending it at the limit counted it beside the next step, 96 tablets of a taper that takes 63
    in 21 days (capped at the draft's 90, under a "21 days" label). A step with no end after the
    others (a taper's open tail) runs on past them: its days are said."""
    spans = dated_days(dosages) if len(dosages) > 1 else None
    opens = [start for start, last in spans or () if last == date.max]
    if spans is None or not opens:
        return False
    first = min(opens)
    return any(start >= first and (start, last) != (first, date.max) for start, last in spans)


def _last_day(period: dict[str, Any], start: date) -> date:
    """The step's last day; one with no end (or an end before its start) runs on."""
    end = period_last_day(period)
    return end if end is not None and end >= start else date.max


def week_share(dosage: dict[str, Any]) -> float:
    """The share of a week's days an instruction is taken on, by the days its timing lists
    (``dayOfWeek``); 1 where it lists none (or none a code names). Its rate is a dosing day's, what
    a daily cap is compared with; what a quantity lasts counts the other days too: once a day on
    Monday, Wednesday and Friday takes 9 tablets in 21 days, where 21 had been dispensed."""
    days = weekdays(dosage)
    return len(days) / 7 if days else 1.0


def dosing_days(dosage: dict[str, Any], days: float) -> float:
    """The days an instruction is taken on in its first ``days``: on the calendar from its start
    where its timing lists days of the week and dates its start (``boundsPeriod``) and ``days``
    is whole; else a week's share of them (``week_share``). Once a day on Monday, Wednesday and
    Friday for ten days from a Monday is 5 doses, where the share gave 4.3: twice a day, 9 tablets
    were dispensed for 10."""
    listed = weekdays(dosage)
    if not listed:  # nearly every instruction: every day
        return days
    start = to_date(bounds_period(dosage).get("start"))
    if start is None or not 0 <= days < 1e6 or not float(days).is_integer():
        return days * len(listed) / 7
    weeks, rest = divmod(int(days), 7)
    first = start.weekday()  # Monday is 0, as ``_WEEKDAYS`` lists them
    return float(weeks * len(listed) + sum(_WEEKDAYS[(first + day) % 7] in listed for day in range(rest)))


def weekdays(dosage: dict[str, Any]) -> tuple[str, ...]:
    """The days of the week its timing lists (``dayOfWeek`` codes), in the week's order; none: every day."""
    listed = as_obj(as_obj(dosage.get("timing")).get("repeat")).get("dayOfWeek")
    if listed is None:  # nearly every timing: at no cost
        return ()
    return tuple(day for day in _WEEKDAYS if day in as_list(listed))


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
