"""A medication order's sig as numbers: mg per dose, administrations per day, planned days.

The arithmetic of the clinical specification (§1), read from R4 MedicationRequest JSON. Absurd input
(1e308 tablets a day) counts as unknown, never as an infinite duration.
"""

from __future__ import annotations

import math
from typing import Any

from cds_service.content.terminology import Drug, Terminology
from cds_service.facts.model import Order
from cds_service.fhir.json import as_list, as_num, as_obj, as_str, codes_of, first_obj, to_date

# Units a dose can be counted in (clinical specification §1), compared without braces, lower case.
COUNT_UNITS = {"pill", "tablet", "tbl", "tab", "capsule"}
_MG_FACTOR = {"mg": 1.0, "g": 1000.0, "mcg": 0.001, "ug": 0.001}
_DAYS_PER_UNIT = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 30.0,
    "a": 365.0,
    "hour": 1 / 24,
    "hours": 1 / 24,
    "day": 1.0,
    "days": 1.0,
    "week": 7.0,
    "weeks": 7.0,
    "month": 30.0,
    "months": 30.0,
}


def _days(quantity: Any) -> float | None:
    quantity = as_obj(quantity)
    value = as_num(quantity.get("value"))
    if value is None:
        return None
    unit = as_str(quantity.get("unit")) or ""
    factor = _DAYS_PER_UNIT.get(as_str(quantity.get("code")) or "") or _DAYS_PER_UNIT.get(unit.lower())
    return value * factor if factor else None


def _unit(quantity: dict[str, Any]) -> str:
    return (as_str(quantity.get("code")) or as_str(quantity.get("unit")) or "").strip("{}").lower()


_PLAUSIBLE = 1e6


def _finite(number: float | None) -> float | None:
    """Absurd input (1e308 tablets a day) counts as unknown, not as an infinite duration."""
    return number if number is not None and math.isfinite(number) and abs(number) < _PLAUSIBLE else None


def fmt_number(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:.1f}"


def _dose(dosage: dict[str, Any], drug: Drug | None) -> tuple[float | None, float | None]:
    """(mg per dose, units per dose) from the first dosage instruction."""
    strength = drug.strength_mg if drug else None
    quantity: dict[str, Any] = {}
    for dose_and_rate in map(as_obj, as_list(dosage.get("doseAndRate"))):
        if isinstance(dose_and_rate.get("doseQuantity"), dict):
            quantity = dose_and_rate["doseQuantity"]
            break
        high = as_obj(dose_and_rate.get("doseRange")).get("high")
        if isinstance(high, dict):
            quantity = high
            break
    value = as_num(quantity.get("value"))
    if value is None:
        return strength, 1.0
    unit = _unit(quantity)
    if unit in _MG_FACTOR:
        mg = value * _MG_FACTOR[unit]
        return mg, (mg / strength if strength else None)
    if unit in COUNT_UNITS or unit == "":
        return (value * strength if strength else None), value
    return None, None


def _per_day(dosage: dict[str, Any], terminology: Terminology) -> float | None:
    timing = as_obj(dosage.get("timing"))
    repeat = as_obj(timing.get("repeat"))
    period, period_unit = as_num(repeat.get("period")), as_str(repeat.get("periodUnit"))
    if period is not None and period_unit:
        frequency = as_num(repeat.get("frequencyMax")) or as_num(repeat.get("frequency")) or 1
        period_days = period * _DAYS_PER_UNIT.get(period_unit, 0)
        if period_days > 0:
            return frequency / period_days
    code = as_obj(timing.get("code"))
    for word in [c.code for c in codes_of(code)] + [as_str(code.get("text")) or ""]:
        if word.upper() in terminology.timing_codes:
            return terminology.timing_codes[word.upper()]
    return None


def _planned_days(request: dict[str, Any], units_per_day: float | None) -> tuple[float | None, str | None]:
    """Planned duration in days and the words saying where it came from (clinical specification §1)."""
    for dosage in map(as_obj, as_list(request.get("dosageInstruction"))):
        repeat = as_obj(as_obj(dosage.get("timing")).get("repeat"))
        days = _days(repeat.get("boundsDuration"))
        if days is not None:
            return days, f"a duration of {fmt_number(days)} days"
        period = as_obj(repeat.get("boundsPeriod"))
        start, end = to_date(period.get("start")), to_date(period.get("end"))
        if start and end:
            return float((end - start).days), f"from {start.isoformat()} to {end.isoformat()}"
    dispense = request.get("dispenseRequest")
    if not isinstance(dispense, dict):
        return None, None
    repeats = dispense.get("numberOfRepeatsAllowed")
    repeats = repeats if isinstance(repeats, int) and not isinstance(repeats, bool) and repeats > 0 else 0
    refills = f" and {repeats} refill{'s' if repeats > 1 else ''}" if repeats else ""
    supply = _days(dispense.get("expectedSupplyDuration"))
    if supply is not None:
        return supply * (1 + repeats), f"a {fmt_number(supply)}-day supply{refills}"
    quantity = as_obj(dispense.get("quantity"))
    value = as_num(quantity.get("value"))
    if value is not None and units_per_day and _unit(quantity) in (*COUNT_UNITS, ""):
        basis = f"{fmt_number(value)} units at {fmt_number(units_per_day)} a day{refills}"
        return value / units_per_day * (1 + repeats), basis
    return None, None


def medication_order(
    facts: dict[str, Any], reference: str, resource: dict[str, Any], drug: Drug | None, terminology: Terminology
) -> Order:
    """An order read from R4 MedicationRequest JSON (``facts``); ``resource`` is the client's own JSON."""
    dosage = first_obj(as_list(facts.get("dosageInstruction")))
    dose_mg, units_per_dose = (_finite(x) for x in _dose(dosage, drug))
    per_day = _finite(_per_day(dosage, terminology))
    units_per_day = units_per_dose * per_day if units_per_dose is not None and per_day is not None else None
    planned, basis = _planned_days(facts, _finite(units_per_day))
    if _finite(planned) is None:
        planned, basis = None, None
    return Order(
        reference=reference,
        resource=resource,
        r4=facts,
        drug=drug,
        dose_mg=dose_mg,
        units_per_dose=units_per_dose,
        per_day=per_day,
        planned_days=planned,
        duration_basis=basis,
        reason_codes=tuple(codes_of(facts.get("reasonCode"))),
    )


def service_order(facts: dict[str, Any], reference: str, resource: dict[str, Any]) -> Order:
    concept = facts.get("code") or facts.get("codeCodeableConcept")
    return Order(
        reference=reference,
        resource=resource,
        r4=facts,
        codes=tuple(codes_of(concept)),
        reason_codes=tuple(codes_of(facts.get("reasonCode"))),
    )
