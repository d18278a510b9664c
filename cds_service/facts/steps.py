"""How long a taper's steps say they run: a Duration in days, whether a step says no end, and
the days a dispensed count lasts past bounded steps into an open tail.

Clinical specification §1 reads a course from its dosage bounds first. A step with none (1 tablet
three times a day for 5 days, then once a day) runs on, so the bounds say no last day and the
course is read from the next source, as for one open-ended instruction: read from the first
step's 5 days alone, 60 tablets (50 days) had no duration card (``facts.sig``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple

from cds_service.content.terminology import Drug
from cds_service.facts.bounds import ended_steps, ends_later
from cds_service.facts.dose import DAYS_PER_UNIT, repeat_of, running_groups
from cds_service.facts.together import bounds_period, dated_days, own_last_days, week_share
from cds_service.facts.units import MG_FACTOR, counts_units, unit_of
from cds_service.fhir.json import as_num, as_obj, as_str, period_last_day, to_date

# Of a count read past bounded steps: the days it lasts, the units the bounded steps take, their
# days, and the open tail's units a day (``tail_days``).
Tail = tuple[float, float, float, float]


def days_of(quantity: Any) -> float | None:
    """A Duration in days (its UCUM code, else its unit's name: "days", "weeks"); None when not one."""
    quantity = as_obj(quantity)
    value = as_num(quantity.get("value"))
    if value is None:
        return None
    unit = as_str(quantity.get("unit")) or ""
    factor = DAYS_PER_UNIT.get(as_str(quantity.get("code")) or "") or DAYS_PER_UNIT.get(unit.lower())
    return value * factor if factor else None


def tablets_in(quantity: dict[str, Any], drug: Drug | None) -> float | None:
    """The units a dispensed mass makes of ``drug``'s strength (300 mg of the 10 mg tablet: 30);
    None for no mass (nearly every order: a count of tablets) or a strength unknown. The course's
    days (``in_units``) and an update's cap (``rules.safe_update.dispensed_at_most``) read it."""
    value, factor = as_num(quantity.get("value")), MG_FACTOR.get(unit_of(quantity))
    if value is None or not factor or drug is None or not drug.strength_mg:
        return None
    return value * factor / drug.strength_mg


def tablets_of(quantity: dict[str, Any], drug: Drug | None) -> float | None:
    """The tablets any dispensed quantity is: a count as counted ("TAB", "{tbl}" and no unit
    alike), a mass as ``tablets_in`` makes it of ``drug``; None for another unit (mL) or a
    strength unknown. Two quantities, one a count and one a mass, compare as these: read each
    as its own unit, an mg first fill beside a tablet total was "another unit" and dropped."""
    return as_num(quantity.get("value")) if counts_units(quantity) else tablets_in(quantity, drug)


def in_units(request: dict[str, Any], drug: Drug | None) -> dict[str, Any]:
    """``request`` with a dispensed mass as the units that make it (``tablets_in``), which §1's
    "quantity ÷ units per day" divides. Read as no count, a 10-day order was of unknown length,
    and the card's update wrote 21 days. The strength unknown, it is as sent."""
    dispense = as_obj(request.get("dispenseRequest"))
    tablets = tablets_in(as_obj(dispense.get("quantity")), drug)
    if tablets is None:
        return request
    units = {"value": tablets, "unit": drug.dose_form if drug and drug.dose_form else "tablet"}
    return {**request, "dispenseRequest": {**dispense, "quantity": units}}


def _duration(dosage: dict[str, Any]) -> float | None:
    days = days_of(repeat_of(dosage).get("boundsDuration"))
    return days if days is not None and days >= 0 else None


def open_step(dosage: dict[str, Any]) -> bool:
    """Does the instruction's bounds say no end: no ``boundsDuration`` in days and no
    ``boundsPeriod`` end (one with an end alone starts when the order was written)?"""
    return _duration(dosage) is None and period_last_day(as_obj(repeat_of(dosage).get("boundsPeriod"))) is None


def has_open_step(dosages: list[dict[str, Any]], bounded: bool = False) -> bool:
    """Is one of several instructions, where another says its end, one with no end that the
    later steps' end does not bound (``facts.bounds.ends_later``: not between dated steps)? Its
    days are then not in the bounds (``open_step``); where none says an end, the bounds say
    nothing anyway. ``bounded``: is one of them one that it bounds (between dated steps)?"""
    if len(dosages) < 2:
        return False
    opens = [open_step(dosage) for dosage in dosages]
    if not any(opens) or all(opens):  # nearly every order: no step without an end
        return False
    dated = [_dated(dosage) for dosage in dosages]
    ended = ended_steps(dated)
    steps = zip(opens, dated, strict=True)
    return any(step and ends_later(start, ended) == bounded for step, (start, _) in steps)


def _dated(dosage: dict[str, Any]) -> tuple[date | None, date | None]:
    period = bounds_period(dosage)
    return to_date(period.get("start")), period_last_day(period)


class DatedTail(NamedTuple):
    """A taper placed by its dates whose last step says no end (``dated_tail``)."""

    first: date  # the taper's first day
    last: date  # the last day of its steps that end
    start: date  # the first day of the step with no end
    steps: tuple[int, ...]  # the instructions with no end, by their places in the list

    @property
    def known(self) -> float:
        """The days the dates already plan: to the dated steps' last day, or the open step's first."""
        return float((max(self.last, self.start) - self.first).days + 1)

    @property
    def said(self) -> str:
        """Where the days come from, as a card says it."""
        then = "then" if self.start > self.last else "and"
        dated = f"a taper from {self.first.isoformat()} to {self.last.isoformat()}"
        return f"{dated}, {then} a step from {self.start.isoformat()} with no end"


def dated_tail(dosages: list[dict[str, Any]]) -> DatedTail | None:
    """The taper's dates where every step dates its start (none of several in a ``sequence``, one
    instruction's ignored: placed by their dates, ``facts.together.dated_days``), and its steps with
    no end run on: they begin after every step that ends begins, or by the first one's last day,
    beside the taper (``has_open_step``; one between dated steps is bounded by the later one,
    ``facts.bounds.ends_later``). How long it runs, its dates do not say: at least to their last
    day, and past it what the next source says (§1); a dated taper of 25 days before its open step
    had been asked for a duration, not warned. None otherwise (nearly every order)."""
    if not has_open_step(dosages) or (spans := dated_days(dosages)) is None:
        return None
    dated = [_dated(dosage) for dosage in dosages]
    opens = [end is None and open_step(dosage) for dosage, (_, end) in zip(dosages, dated, strict=True)]
    taper = ended_steps(dated)
    tail = [index for index, step in enumerate(opens) if step and not ends_later(dated[index][0], taper)]
    ended = [last for _, last in spans if last < date.max]
    if not tail or not ended or any(last == date.max and not opens[index] for index, (_, last) in enumerate(spans)):
        return None  # e.g. a dated start and a duration: not placed by its dates alone
    starts = [start for start, _ in spans]
    return DatedTail(min(starts), max(ended), min(starts[index] for index in tail), tuple(tail))


def _dated_tail_days(dosages: list[dict[str, Any]], total: float, daily: Sequence[float | None]) -> Tail | None:
    """``tail_days`` of a taper placed by its dates (``dated_tail``): each dated step takes its
    units from its first to its own last day (a day it shares with the next step is the next's;
    steps on the same days add up, gaps take none), and what is left when the last has ended
    lasts at the open step's rate. None where the count runs out before then (it does not say
    how long the open step runs), open steps begin on different days (one runs on into the
    other), one is bounded by a later step (its last day not said), or a step's units are
    unknown. Read at the highest step, 200 tablets beside 25 dated days read as 66.67 days."""
    tail, spans = dated_tail(dosages), dated_days(dosages)
    if tail is None or spans is None:
        return None
    changes: dict[date, float] = {}
    for index, ((start, _), last) in enumerate(zip(spans, own_last_days(spans), strict=True)):
        if (units := daily[index]) is None or (index in tail.steps and start != tail.start):
            return None
        if last == date.max and index not in tail.steps:
            return None
        rate = units * week_share(dosages[index])
        changes[start] = changes.get(start, 0.0) + rate
        if last < date.max:
            after = last + timedelta(days=1)
            changes[after] = changes.get(after, 0.0) - rate
    left, running, at = total, 0.0, tail.first
    for day in sorted(changes):
        left -= running * (day - at).days
        if left <= 0:
            return None
        running, at = running + changes[day], day
    if running <= 0:
        return None
    before = float((at - tail.first).days)
    return before + left / running, total - left, before, running


def tail_days(dosages: list[dict[str, Any]], total: float, daily: Sequence[float | None]) -> Tail | None:
    """The days ``total`` units last where a taper's steps with a ``boundsDuration`` come first and
    its last step (or steps taken together) says no end: the steps' own days, then what is left at
    the tail's units a day (``daily``: each instruction's units a dosing day). 60 tablets, three a
    day for 5 days then once a day, last 15 + 45 = 50 days; §1's highest rate reads 20. None where
    that cannot be counted: a step of unknown units, a count of doses, an open step before the
    last, or nothing left for the tail. Dated steps are placed by their dates (``_dated_tail_days``)."""
    if len(daily) != len(dosages) or any(_counted(dosage) for dosage in dosages):
        return None
    if any("boundsPeriod" in repeat_of(dosage) for dosage in dosages):
        return _dated_tail_days(dosages, total, daily)  # placed by their dates, gaps and all
    *firsts, last = running_groups(dosages)
    if not firsts or not all(open_step(dosages[index]) for index in last):
        return None
    used = days = 0.0
    for group in firsts:
        lengths = [_duration(dosages[index]) for index in group]
        for index, length in zip(group, lengths, strict=True):
            if length is None or (units := daily[index]) is None:
                return None
            used += units * week_share(dosages[index]) * length
        days += max(length or 0.0 for length in lengths)
    rates = [daily[index] for index in last]
    rate = sum(units * week_share(dosages[index]) for index, units in zip(last, rates, strict=True) if units)
    if None in rates or rate <= 0 or total <= used:
        return None
    return days + (total - used) / rate, used, days, rate


def _counted(dosage: dict[str, Any]) -> bool:
    repeat = repeat_of(dosage)
    return any(key in repeat for key in ("count", "countMax"))
