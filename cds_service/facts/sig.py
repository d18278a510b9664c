"""A medication order's sig as numbers: mg per dose, administrations per day, planned days.

The arithmetic of the clinical specification (§1), read from R4 MedicationRequest JSON. A FHIR
``Period.end`` is the last day it covers, so a bounds period counts both its ends. Several dosage
instructions (a taper) are read as one order: its highest dose, its highest frequency, and the
days from its first step to its last. Absurd input (1e308 tablets a day) is unknown, not infinite.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from cds_service.content.terminology import Drug, Terminology
from cds_service.facts.bounds import (
    LastDay,
    Span,
    bounds_start,
    dated_span,
    end_date,
    last_day_taken,
    span_days,
)
from cds_service.facts.dose import (
    counts_units,
    course_rates,
    dosages_of,
    dose_of_step,
    highest,
    per_day_of_step,
    repeat_of,
    units_per_day,
)
from cds_service.facts.model import Order
from cds_service.facts.numbers import PAST_A_CENTURY, counted, days_said, finite, fmt_number, supply_said
from cds_service.facts.reasons import reason_of
from cds_service.facts.steps import dated_tail, days_of, has_open_step, in_units, tail_days
from cds_service.facts.together import step_group
from cds_service.fhir.coding import on_one_line
from cds_service.fhir.json import as_int, as_list, as_num, as_obj, codes_of, period_last_day, to_date


def _dose_varies(dosages: list[dict[str, Any]], doses_mg: list[float | None]) -> bool:
    """Whether the dose read (the highest) is one of several: steps of different doses, or a
    range (its high end, or "up to" with no low end): a card saying "20 mg per dose" of 1–2
    10 mg tablets told a pharmacist more than the order did."""
    if len({mg for mg in doses_mg if mg is not None}) > 1:
        return True
    for dosage in dosages:
        places = [as_obj(p) for p in as_list(dosage.get("doseAndRate"))]
        if any("doseQuantity" in p for p in places):
            continue
        ranges = [as_obj(p.get("doseRange")) for p in places if "doseRange" in p]
        if any(as_num(as_obj(r.get("low")).get("value")) != as_num(as_obj(r.get("high")).get("value")) for r in ranges):
            return True
    return False


_Steps = tuple[float, int]
# Planned days, the dated span, when dosing began, the span's last day of use (``course_plan``).
CoursePlan = tuple[float | None, Span | None, date | None, date | None]


PlanInputs = tuple[Any, Any, Any, Any]
# Asked for only when the bounds do not say how long: the order's units a day (``units_per_day``),
# its highest administrations a day, and each instruction's units a dosing day (``tail_days``).
_Rates = tuple[Callable[[], float | None], Callable[[], float | None], Callable[[], list[float | None]]]
_Planned = tuple[float | None, str | None]  # planned days, and the words saying where from
_Bounds = tuple[Span | None, _Steps | None]  # what the dosage bounds say (``_bounds``)


def plan_inputs(request: dict[str, Any]) -> PlanInputs:
    """The fields ``course_plan`` reads, and only those: orders that dose and dispense alike plan
    alike, whenever they were written and whatever their validity period (``courses`` reads each
    plan once per process). ``authoredOn`` is left out: only a bounds period that ends without a
    start reads it (``starts_when_written``), and such an order's plan is read from the order."""
    dispense = as_obj(request.get("dispenseRequest"))
    repeats, supply = dispense.get("numberOfRepeatsAllowed"), dispense.get("expectedSupplyDuration")
    return request.get("dosageInstruction"), repeats, supply, dispense.get("quantity")


def planned_request(inputs: PlanInputs) -> dict[str, Any]:
    """An order of nothing but the ``plan_inputs``, for ``course_plan`` to read."""
    dosage, repeats, supply, quantity = inputs
    dispense = {"numberOfRepeatsAllowed": repeats, "expectedSupplyDuration": supply, "quantity": quantity}
    return {"dosageInstruction": dosage, "dispenseRequest": dispense}


def _bounds(dosages: list[dict[str, Any]], authored: object, last_day: LastDay) -> _Bounds:
    """What the dosage bounds say, read once: the dated span (``dated_span``), and the
    ``boundsDuration`` steps. The span only when it is what sets the planned duration (a history
    course then ends on its last day, clinical specification §1): when the steps say longer, they
    do. ``last_day``: a draft's by its days of use (``period_last_day``), a history's by its end's
    date (``end_date``: a dose today is on board)."""
    span = dated_span(dosages, authored, last_day)
    stepped = _stepped_days(dosages)
    if span is not None and stepped is not None and stepped[0] >= span_days(span):
        span = None
    return span, stepped


def _stepped_days(dosages: list[dict[str, Any]]) -> tuple[float, int] | None:
    """Days of the ``boundsDuration`` steps, and how many steps: instructions with the same
    ``sequence`` run together (the longest counts), the others one after another (they add up)."""
    steps: dict[object, float] = {}
    for index, dosage in enumerate(dosages):
        days = days_of(repeat_of(dosage).get("boundsDuration"))
        if days is None or days < 0:
            continue
        key = step_group(dosage, index)
        steps[key] = max(days, steps.get(key, 0.0))
    return (sum(steps.values()), len(steps)) if steps else None


def step_days(dosage: dict[str, Any]) -> float | None:
    """How long one dosage instruction (a taper's step) runs: its ``boundsDuration``, else its
    ``boundsPeriod`` counted inclusively; None when it does not say."""
    repeat = repeat_of(dosage)
    days = finite(days_of(repeat.get("boundsDuration")))
    if days is not None and days >= 0:
        return days
    period = as_obj(repeat.get("boundsPeriod"))
    start, end = to_date(period.get("start")), period_last_day(period)
    return span_days((start, end)) if start and end and start <= end else None


def _bounded_days(dosages: list[dict[str, Any]], bounds: _Bounds) -> tuple[float | None, str | None]:
    """Planned days from the dosage bounds (``boundsDuration``, ``boundsPeriod`` inclusive); when a
    taper states both kinds, the longer reading counts."""
    span, stepped = bounds
    if span is not None:
        taper = "a taper " if len(dosages) > 1 else ""
        return span_days(span), f"{taper}from {span[0].isoformat()} to {span[1].isoformat()}"
    if stepped is not None:
        days, count = stepped
        steps = f" in {count} steps" if count > 1 else ""
        return days, f"a duration of {days_said(days)}{steps}"
    return None, None


def bounded_days(request: dict[str, Any]) -> float | None:
    """The days a draft's dosage bounds plan (§1's first sources), or None: what a dose change
    dispenses for before its fill, which may be short of the course (a dose range's count read at
    its top dose lasts 10 days of 20)."""
    dosages = dosages_of(request)
    if has_open_step(dosages):  # a step says no end: the bounds plan no course
        return None
    days, _ = _bounded_days(dosages, _bounds(dosages, request.get("authoredOn"), period_last_day))
    days = finite(days)
    return days if days is not None and days > 0 else None


def _planned_days(request: dict[str, Any], dosages: list[dict[str, Any]], bounds: _Bounds, rates: _Rates) -> _Planned:
    """Planned duration in days and the words saying where it came from (clinical specification
    §1). Where a step of several says no end (``facts.steps``), the bounds do not say how long:
    the next source does, never shorter than the steps that say their days, and where none says,
    the course is unknown (a card asks); read from the first step's 5 days alone, 60 tablets that
    last 50 had no card. Dated steps before it (``facts.steps.dated_tail``) the next source
    reads only where it reaches past their dates: short of them, it does not say how long the
    tail runs (a 10-tablet count beside 25 dated days had read as 3.33 days: no card). One the
    later dates bound (between dated steps) has the dates' days, or the next source's if longer:
    300 tablets at three a day beside 13 dated days are 100 days (read as 13: no card)."""
    days, basis = _bounded_days(dosages, bounds)
    if days is None or days <= 0:
        later, said = _dispensed_days(request, dosages, rates)
        tail = dated_tail(dosages)  # a dated taper's open tail: read past its dates, or not at all
        return (later, said) if tail is None or (later or 0) >= tail.known else (None, None)
    if not (runs_on := has_open_step(dosages)) and not has_open_step(dosages, bounded=True):
        return days, basis
    later, said = _dispensed_days(request, dosages, rates)
    if later is not None and later >= days:  # never shorter than the steps that say their days
        return later, said
    return (days, basis) if later is not None or not runs_on else (None, None)


def _dispensed_days(request: dict[str, Any], dosages: list[dict[str, Any]], rates: _Rates) -> _Planned:
    """Planned days from §1's sources past the bounds, and past them, a single instruction's count
    of doses over its doses a day (a count of 10 once a day is a 10-day course, not "specify a
    duration"). The rates (``_Rates``) are asked for only when nothing before says how long. A
    source saying 0 days, or 0 units, says nothing (EHRs send 0 for a blank): the next one is
    read; a 0-day supply beside 90 tablets once a day read as no course at all, and no card came."""
    units_per_day, per_day, step_daily = rates
    dispense = request.get("dispenseRequest")
    if isinstance(dispense, dict):
        repeats = max(as_int(dispense.get("numberOfRepeatsAllowed")) or 0, 0)
        refills = f" and {repeats} refill{'s' if repeats > 1 else ''}" if repeats else ""
        supply = days_of(dispense.get("expectedSupplyDuration"))
        if supply is not None and supply > 0:
            return supply * (1 + repeats), f"{supply_said(supply)}{refills}"
        quantity = as_obj(dispense.get("quantity"))
        value = as_num(quantity.get("value"))
        daily = units_per_day() if value is not None and value > 0 else None
        if value is not None and daily and counts_units(quantity):
            planned = value / daily * (1 + repeats)
            tail = tail_days(dosages, value * (1 + repeats), step_daily()) if has_open_step(dosages) else None
            if tail is not None and tail[0] > planned:  # never shorter than §1's reading
                used, first, then = map(fmt_number, tail[1:])
                said = f"{counted(value, quantity)}{refills}: {used} in the first {first} days, then {then} a day"
                return tail[0], said
            return planned, f"{counted(value, quantity)} at {fmt_number(daily)} a day{refills}"
    # Past the specification's sources: one instruction's count of doses over its doses a day.
    repeat = as_obj(as_obj(dosages[0].get("timing")).get("repeat")) if len(dosages) == 1 else {}
    count = as_num(repeat.get("countMax")) or as_num(repeat.get("count"))
    rate = per_day() if count is not None and count > 0 else None
    if count is None or not rate or rate <= 0:
        return None, None
    return count / rate, f"{fmt_number(count)} doses at {fmt_number(rate)} a day"


def _step_daily(units: list[float | None], rates: list[float | None]) -> list[float | None]:
    """Each instruction's units on a day it is taken, where it says both (``tail_days``)."""
    return [finite(u * r) if u is not None and r is not None else None for u, r in zip(units, rates, strict=False)]


def _sensible(planned: float | None, basis: str | None) -> tuple[float | None, str | None]:
    """A planned duration that is a number of days at all: negative, zero or none count as unknown.
    One past a century (1e15 days, "2800 years", past the float's range) is over every limit: read
    as a day past it (``numbers.PAST_A_CENTURY``), never as unknown (asked to "specify a duration"
    for 1,000,000 days), nor as a date past the year 9999."""
    return (min(planned, PAST_A_CENTURY), basis) if planned is not None and planned > 0 else (None, None)  # NaN: None


def medication_order(
    facts: dict[str, Any], reference: str, resource: dict[str, Any], drug: Drug | None, terminology: Terminology
) -> Order:
    """An order read from R4 MedicationRequest JSON (``facts``); ``resource`` is the client's own JSON."""
    dosages = dosages_of(facts)
    doses = [dose_of_step(dosage, drug) for dosage in dosages or [{}]]
    dose_mg, units_per_dose = finite(highest(mg for mg, _ in doses)), finite(highest(u for _, u in doses))
    step_per_day = [per_day_of_step(dosage, terminology) for dosage in dosages]  # read once, for all
    per_day = finite(highest(step_per_day))
    daily = finite(units_per_day(dosages, (units for _, units in doses), step_per_day))
    bounds = _bounds(dosages, facts.get("authoredOn"), period_last_day)
    step_units = [units for _, units in doses]
    course = course_rates(dosages, step_per_day, terminology)  # a quantity's days: the longer reading
    rates: _Rates = (
        lambda: finite(units_per_day(dosages, step_units, course)),
        lambda: finite(highest(course)),
        lambda: _step_daily(step_units, course),
    )
    planned, basis = _sensible(*_planned_days(in_units(facts, drug), dosages, bounds, rates))
    tail = dated_tail(dosages) if planned is None else None  # its dates alone: a course at least so long
    return Order(
        reference=reference,
        resource=resource,
        r4=facts,
        drug=drug,
        dose_mg=dose_mg,
        dose_up_to=_dose_varies(dosages, [mg for mg, _ in doses]),
        units_per_dose=units_per_dose,
        per_day=per_day,
        units_per_day=daily,
        step_per_day=tuple(map(finite, step_per_day)),
        planned_days=planned,
        planned_at_least=tail.known if tail else None,
        duration_basis=basis or (tail.said if tail else None),
        reason=reason_of(facts),
    )


def course_plan(facts: dict[str, Any], drug: Drug | None, terminology: Terminology) -> CoursePlan:
    """A history order's planned days, as ``medication_order`` reads them, its dated span
    (``_bounds``), the dosing's own start (the earliest bounds period's) and the span's last day
    of use, where a draft so written would end a day sooner (``last_day_taken``): the dose and
    frequency are read only when a quantity is all that says how long (most of a history says
    it outright). Read from ``dosageInstruction``, ``dispenseRequest`` and, for a bounds period
    that ends without a start alone (``starts_when_written``), ``authoredOn``."""
    dosages, authored = dosages_of(facts), facts.get("authoredOn")
    bounds = _bounds(dosages, authored, end_date)

    def course() -> list[float | None]:  # a quantity's days: the longer reading (``course_rates``)
        return course_rates(dosages, [per_day_of_step(d, terminology) for d in dosages], terminology)

    def daily() -> float | None:
        return finite(units_per_day(dosages, (dose_of_step(dosage, drug)[1] for dosage in dosages), course()))

    def rate() -> float | None:
        return finite(highest(course()))

    def step_daily() -> list[float | None]:
        return _step_daily([dose_of_step(dosage, drug)[1] for dosage in dosages], course())

    planned = _sensible(*_planned_days(in_units(facts, drug), dosages, bounds, (daily, rate, step_daily)))[0]
    return planned, bounds[0], bounds_start(dosages), last_day_taken(dosages, authored, bounds[0])


def service_order(facts: dict[str, Any], reference: str, resource: dict[str, Any]) -> Order:
    concept = facts.get("code") or facts.get("codeCodeableConcept")
    return Order(
        reference=reference,
        resource=resource,
        r4=facts,
        codes=on_one_line(codes_of(concept)),
        reason=reason_of(facts),
    )
