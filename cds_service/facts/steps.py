"""How long a taper's steps say they run: a Duration in days, whether a step says no end, and
the days a dispensed count lasts past bounded steps into an open tail.

Clinical specification §1 reads a course from its dosage bounds first. A step with none (1 tablet
three times a day for 5 days, then once a day) runs on, so the bounds say no last day and the
course is read from the next source, as for one open-ended instruction: read from the first
step's 5 days alone, 60 tablets (50 days) had no duration card (``facts.sig``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cds_service.content.terminology import Drug
from cds_service.facts.dose import DAYS_PER_UNIT, MG_FACTOR, counts_units, repeat_of, running_groups, unit_of
from cds_service.facts.together import week_share
from cds_service.fhir.json import as_num, as_obj, as_str, period_last_day

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


def has_open_step(dosages: list[dict[str, Any]]) -> bool:
    """Is one of several instructions, where another says its end, one with no end? Its days are
    then not in the bounds (``open_step``); where none says an end, the bounds say nothing anyway."""
    if len(dosages) < 2:
        return False
    opens = [open_step(dosage) for dosage in dosages]
    return any(opens) and not all(opens)


def tail_days(dosages: list[dict[str, Any]], total: float, daily: Sequence[float | None]) -> Tail | None:
    """The days ``total`` units last where a taper's steps with a ``boundsDuration`` come first and
    its last step (or steps taken together) says no end: the steps' own days, then what is left at
    the tail's units a day (``daily``: each instruction's units a dosing day). 60 tablets, three a
    day for 5 days then once a day, last 15 + 45 = 50 days; §1's highest rate reads 20. None where
    that cannot be counted: dated steps (placed by their dates, gaps and all), a step of unknown
    units, a count of doses, an open step before the last, or nothing left for the tail."""
    if len(daily) != len(dosages) or any(_dated_or_counted(dosage) for dosage in dosages):
        return None
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


def _dated_or_counted(dosage: dict[str, Any]) -> bool:
    repeat = repeat_of(dosage)
    return any(key in repeat for key in ("boundsPeriod", "count", "countMax"))
