"""The draft switched to another product, one unit a dose (the low-dose swaps): its
frequency capped where the new product allows fewer doses a day, and its dispensed count
recounted in the new product's units."""

from __future__ import annotations

import math
from typing import Any

from cds_service.content.terminology import Drug
from cds_service.facts.dose import dosages_of, units_per_day
from cds_service.facts.model import Order
from cds_service.facts.sig import bounded_days
from cds_service.facts.steps import days_of, tablets_in
from cds_service.facts.together import dosing_days, groups, week_share
from cds_service.facts.units import MG_FACTOR, VOLUME_UNITS, counts_units, unit_of
from cds_service.fhir.coding import RXNORM
from cds_service.fhir.dialect import dialect
from cds_service.fhir.json import as_num, as_obj, copy_json
from cds_service.rules.actions import UCUM, writable_repeat
from cds_service.rules.actions import days as in_days
from cds_service.rules.safe_update import dispensed_days, keep_as_needed, safe_update
from cds_service.rules.taper_count import taper_units


def with_product(order: Order, product: Drug, *, max_per_day: float) -> dict[str, Any]:
    """The draft switched to one unit of ``product``, no more often than ``max_per_day`` in all:
    an instruction over its share is rewritten to its share a day, one left with none goes."""
    resource = copy_json(order.resource)
    resource.pop("medicationReference", None)
    resource["medicationCodeableConcept"] = {
        "coding": [{"system": RXNORM, "code": product.rxcui, "display": product.name}],
        "text": product.name,
    }
    form = product.dose_form or "tablet"
    fields = dialect(resource)
    steps = dosages_of(resource)
    kept: list[dict[str, Any]] = []
    new_rates = capped_rates(order, steps, max_per_day)
    for dosage, rate, capped in zip(steps, _rates(order, steps), new_rates, strict=True):
        if capped == 0 and rate != 0:  # its group's share is used up
            continue
        keep_as_needed(dosage)  # before its timing code, which may say so, goes
        fields.set_dose(dosage, {"value": 1, "unit": form, "system": UCUM, "code": f"{{{form}}}"})
        if capped != rate:
            repeat = writable_repeat(dosage)
            dosage["timing"].pop("code", None)
            for key in ("frequencyMax", "periodMax", "timeOfDay", "when", "periodUnit", "periodUnits"):
                repeat.pop(key, None)
            repeat.update({"frequency": capped, "period": 1, fields.period_unit: "d"})
        kept.append(dosage)
    if len(kept) < len(steps):
        resource["dosageInstruction"] = kept
    recount(order, resource, form, new_rates)
    return safe_update(order, resource, product)


def capped_rates(order: Order, steps: list[dict[str, Any]], max_per_day: float) -> list[float | None]:
    """Times a day of each instruction once those taken together (``facts.together``: a
    ``sequence``, or the same or overlapping dates) share ``max_per_day``, in the order listed:
    three times a day and one at bedtime is four a day, and becomes three times a day with the
    bedtime dose gone (0). A taper's steps each have the whole limit; an instruction whose
    frequency is unknown stays unknown."""
    left: dict[object, float] = {}
    capped: list[float | None] = []
    for group, rate in zip(groups(steps), _rates(order, steps), strict=True):
        if rate is None:
            capped.append(None)
            continue
        remaining = left.get(group, max_per_day)
        allowed = rate if rate <= remaining else math.floor(remaining)
        left[group] = remaining - allowed
        capped.append(allowed)
    return capped


def _rates(order: Order, steps: list[dict[str, Any]]) -> list[float | None]:
    """Each instruction's times a day, as the facts read it; else the order's highest."""
    if len(order.step_per_day) == len(steps):
        return [rate if rate is not None else order.per_day for rate in order.step_per_day]
    return [order.per_day] * len(steps)


def recount(order: Order, resource: dict[str, Any], form: str, rates: list[float | None]) -> None:
    """A dose change's dispensed count in what it now dispenses (one ``form`` a dose, ``rates`` a
    day for each of the draft's instructions, 0 for one left out). One instruction: for its bounds
    (§1) within a supply stated, else the days its count lasted; a supply longer than the bounds
    then says theirs (a taper's too); a count with no unit is of units, as the facts read it: two
    2.8 mg tablets a day, 28 for 14 days, become one a day, 14; "14 capsules" of a tablet become
    14 tablets. Read at the highest dose of a range instead, 1–2 tablets every 8
    hours for 20 days (60) became 30 one-tablet doses, ten days' worth. A taper is counted step by
    step, each step for its own days, over its supply or the days its count lasted
    (``rules.taper_count``); at its highest step only where a step cannot be read. A count whose
    days cannot be read stays. A mass is the draft's tablets that make it (210 mg of 10 mg: 21),
    counted as a count is: kept as 210 mg, it was 42 of 5 mg, twice the draft's days. A volume is
    counted in tablets for the days it lasts at the draft's dose (``safe_update.dispensed_days``:
    30 mL at 10 mL three times a day, a day, 3), within its supply or bounds, else goes: 300 mL
    had become 300 mL of 5 mg tablets, then 63 tablets for 21 days whatever the volume (a
    pharmacist's reviews). A first fill likewise (``_first_fill``). Where the duration card
    fires, its limit counts them (``pipeline.cards``), capped at those days
    (``safe_update.dispensed_at_most``). Another unit no tablet count is read from ("1 bottle",
    "30 each") is counted for the days its supply or bounds give, else goes; ``safe_update`` caps
    it ("each" by its own words, any other unit, a container, by those days)."""
    dispense = as_obj(resource.get("dispenseRequest"))
    steps = dosages_of(order.resource)
    daily = units_per_day(steps, [1.0] * len(steps), rates)
    _first_fill(order, dispense, form, daily)
    quantity = _mass_as_tablets(order, dispense.get("quantity"), form)
    if not isinstance(quantity, dict) or unit_of(quantity) in MG_FACTOR:
        return  # a mass of a strength unknown: capped by ``safe_update``
    countable = counts_units(quantity)  # no unit: as ``facts`` count
    value = as_num(quantity.get("value")) if countable else None
    counted = {**(quantity if countable else {}), "unit": form, "system": UCUM, "code": f"{{{form}}}"}
    supply = days_of(dispense.get("expectedSupplyDuration"))
    supply = supply if supply is not None and 1 <= supply < 1e5 else None  # a 12-hour supply is none
    stepped = taper_units(order, rates, supply, value) if len(steps) > 1 else None
    lasted = value / order.units_per_day if value is not None and order.units_per_day else None
    bounded = bounded_days(order.r4)
    # One instruction: its bounds (§1), within a supply stated; else the days its count lasted.
    days = min(supply, bounded or supply) if supply is not None else bounded if bounded is not None else lasted
    if unit_of(quantity) in VOLUME_UNITS:  # the days it lasts at the draft's dose, never more: else none
        lasted = dispensed_days(order, quantity)
        days = lasted = min(lasted, days or math.inf) if lasted is not None else None
        stepped = None
    if len(steps) == 1 and daily and days is not None and math.isfinite(daily * days):
        # On the days of the week it lists, counted on the calendar from a dated start.
        taken = daily / week_share(steps[0]) * dosing_days(steps[0], days)
        counted["value"] = math.ceil(taken - 1e-9)  # never above the draft's: ``safe_update``
    elif stepped is not None:
        counted["value"] = math.ceil(stepped - 1e-9)  # never above the draft's either
    elif lasted is not None and daily and math.isfinite(daily * lasted):  # a taper's step not read: its highest
        counted["value"] = math.ceil(daily * lasted - 1e-9)
    if countable or "value" in counted:
        dispense["quantity"] = counted
    else:
        _without_quantity(resource, dispense)
    # 15 tablets for 5 days is no 30-day supply; a taper's only where it was counted for its bounds
    # (a step of no stated length runs on: counted for the supply, it keeps it). 30 mL: a day's.
    bounded = days if unit_of(quantity) in VOLUME_UNITS else bounded
    if (supply is not None and bounded is not None and bounded < supply) and (
        len(steps) == 1 or stepped == taper_units(order, rates, bounded, value)
    ):
        dispense["expectedSupplyDuration"] = in_days(math.ceil(bounded - 1e-9))


def _mass_as_tablets(order: Order, quantity: Any, form: str) -> Any:
    """A dispensed mass as the draft's tablets that make it (210 mg of 10 mg: 21), else as sent."""
    tablets = tablets_in(quantity, order.drug) if isinstance(quantity, dict) else None
    if tablets is not None and math.isfinite(tablets):
        return {"value": math.floor(tablets + 1e-9), "unit": form}
    return quantity


def _first_fill(order: Order, dispense: dict[str, Any], form: str, daily: float | None) -> None:
    """A first fill of a mass or a volume as the tablets, one a dose, for the days it lasts at the
    draft's dose (``dispensed_days``): 300 mg of the 10 mg tablet three times a day is 10 days, 30
    tablets. Kept as 300 mg, it was 60 of 5 mg, a 20-day first fill (a pharmacist's review). Its
    days unread: its quantity goes (a mass of a strength unknown stays, as the total does)."""
    fill = as_obj(dispense.get("initialFill"))
    quantity = fill.get("quantity")
    if not isinstance(quantity, dict) or counts_units(quantity):
        return
    days, tablets = dispensed_days(order, quantity), tablets_in(quantity, order.drug)
    if unit_of(quantity) in MG_FACTOR and tablets is None:
        return
    count = daily * days if days is not None and daily else tablets
    if count is not None and 1 <= count < 1e15:
        count = math.floor(count + 1e-9)
        fill["quantity"] = {"value": count, "unit": form, "system": UCUM, "code": f"{{{form}}}"}
    else:
        del fill["quantity"]
        if not fill:
            del dispense["initialFill"]


def _without_quantity(resource: dict[str, Any], dispense: dict[str, Any]) -> None:
    """The draft's quantity gone from the update, and its ``dispenseRequest`` with it where
    nothing else is left: FHIR has no empty objects."""
    dispense.pop("quantity", None)
    if not dispense:
        resource.pop("dispenseRequest", None)
