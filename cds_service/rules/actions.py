"""FHIR actions for suggestions: whole resources, built from the client's own draft.

An ``update`` carries the complete draft with the same id, changed only where the card says
(CDS Hooks 2.0 §Action), in the FHIR version the client sent it (``fhir.dialect``); the
renderer adds each action's ``description`` from the card text. Every update is safe to
accept (clinical specification §2): ``rules.safe_update`` keeps its dispensed quantity at or under
the draft's and drops the contained resources nothing references any more (FHIR dom-3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from cds_service.content.terminology import Drug
from cds_service.facts.dose import COUNT_UNITS, dosages_of, repeat_of, step_group, unit_of, units_per_day
from cds_service.facts.model import Order
from cds_service.facts.sig import step_days
from cds_service.fhir.coding import CPT, RXNORM, Code
from cds_service.fhir.dialect import dialect
from cds_service.fhir.json import as_int, as_list, as_num, as_obj, copy_json, to_date, to_end_date
from cds_service.rules.safe_update import safe_update

UCUM = "http://unitsofmeasure.org"


def days(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "days", "system": UCUM, "code": "d"}


def delete(order: Order) -> dict[str, Any]:
    return {"type": "delete", "resourceId": order.reference}


def update(resource: dict[str, Any]) -> dict[str, Any]:
    return {"type": "update", "resource": resource}


def create(resource: dict[str, Any]) -> dict[str, Any]:
    return {"type": "create", "resource": resource}


# (units per dose, administrations a day) of a dosage instruction, by its place in the draft's
# list and its JSON; None where it does not say.
StepSig = Callable[[int, dict[str, Any]], tuple[float | None, float | None]]


def with_duration(order: Order, limit_days: int, sig: StepSig) -> dict[str, Any]:
    """The draft limited to ``limit_days``: bounds, supply, no refills, and the quantity the kept
    steps take, each for its own days (instructions taken together add up; a taper's steps count
    one after another). Where a step's rate is unknown, the draft's quantity in proportion to the
    days kept (``_in_proportion``)."""
    resource = copy_json(order.resource)
    fields = dialect(resource)
    steps = dosages_of(resource) or [{}]
    place = {id(dosage): index for index, dosage in enumerate(steps)}
    plan = _dated_steps(steps, limit_days, to_date(resource.get("authoredOn"))) or [
        (dosage, allotted, None) for dosage, allotted in _trimmed_steps(steps, limit_days)
    ]
    kept, units_needed = [], 0.0
    for dosage, allotted, period in plan:
        units, per_day = sig(place[id(dosage)], dosage)
        repeat = writable_repeat(dosage)
        for key in ("boundsPeriod", "boundsRange", "boundsDuration", "boundsQuantity"):
            repeat.pop(key, None)
        if period is not None:  # dated steps keep their dates: which run together stays said
            repeat["boundsPeriod"] = period
        else:
            repeat[fields.bounds_duration] = days(allotted)
        _cut_count(repeat, per_day, allotted)
        kept.append(dosage)
        units_needed = units_needed + units * per_day * allotted if units and per_day else math.nan
    resource["dosageInstruction"] = kept
    dispense = _writable(resource, "dispenseRequest")
    dispense["expectedSupplyDuration"] = days(limit_days)
    fields.no_repeats(dispense)
    if not math.isnan(units_needed):
        dispense["quantity"] = {"value": math.ceil(units_needed - 1e-9), **_unit_of(order)}
    elif (quantity := _in_proportion(order, limit_days)) is not None:
        dispense["quantity"] = quantity
    return safe_update(order, resource)


def _in_proportion(order: Order, limit_days: int) -> dict[str, Any] | None:
    """The draft's quantity cut in proportion to the days kept, rounded down (450 mL over 30 days:
    315 mL for 21), when its rate cannot be read step by step; else its units a day for the days
    (``Order.units_per_day``); else nothing to set, the draft having no quantity either."""
    ordered = as_obj(order.resource.get("dispenseRequest")).get("quantity")
    value = as_num(ordered.get("value")) if isinstance(ordered, dict) else None
    if value is not None and 0 < value < 1e9 and order.planned_days:  # else kept as sent
        return {**copy_json(ordered), "value": max(math.floor(value / order.planned_days * limit_days + 1e-9), 1)}
    if order.units_per_day:
        return {"value": math.ceil(order.units_per_day * limit_days - 1e-9), **_unit_of(order)}
    return None


def _cut_count(repeat: dict[str, Any], per_day: float | None, allotted: int) -> None:
    """A count of doses cut to what the step's days hold, never raised: a count that already ends
    the course sooner stays (the bounds and the count both hold, whichever comes first)."""
    for key in ("count", "countMax"):
        count = as_int(repeat.get(key))
        if count is not None and per_day:
            repeat[key] = min(count, math.ceil(per_day * allotted - 1e-9))


def _dated_steps(
    steps: list[dict[str, Any]], limit_days: int, authored: date | None
) -> list[tuple[dict[str, Any], int, dict[str, str] | None]] | None:
    """Steps that all date their start (``boundsPeriod``), no ``sequence``, cut by date: ``limit_days``
    from the first start, each step starting by then kept and ended by then at the latest (steps on
    the same or overlapping dates run together: all stay), with its days and its new period. None
    otherwise (cut by lengths and sequences, ``_trimmed_steps``), as is one step not dated after the
    order was written (§2's ``boundsDuration``: never an order already over)."""
    if not steps or any("sequence" in dosage for dosage in steps):
        return None
    starts = []
    for dosage in steps:
        period = as_obj(repeat_of(dosage).get("boundsPeriod"))
        if (start := to_date(period.get("start"))) is None:
            return None
        starts.append((dosage, period, start, to_end_date(period.get("end"))))
    if len(starts) == 1:
        _, _, begins, ends = starts[0]
        if authored is None or begins <= authored or (ends is not None and ends < begins):
            return None
    first = min(start for _, _, start, _ in starts)
    try:
        cutoff = first + timedelta(days=limit_days - 1)
    except OverflowError:  # a start in the year 9999
        cutoff = date.max
    kept: list[tuple[dict[str, Any], int, dict[str, str] | None]] = []
    for dosage, period, start, end in sorted(starts, key=lambda step: step[2]):
        if start <= cutoff:
            last = min(end, cutoff) if end is not None and end >= start else cutoff
            kept.append((dosage, (last - start).days + 1, {"start": period["start"], "end": last.isoformat()}))
    return kept


def writable_repeat(dosage: dict[str, Any]) -> dict[str, Any]:
    """The dosage's ``timing.repeat`` to change (``timing`` made writable too)."""
    return _writable(_writable(dosage, "timing"), "repeat")


def _writable(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` to change, a new object where the client sent something else there (a
    string, a list): the edit is built whatever the draft holds, as tolerantly as the facts read
    it, and such a draft is then not offered (``pipeline.cards``: the R4 model rejects it)."""
    if not isinstance(parent.get(key), dict):
        parent[key] = {}
    child: dict[str, Any] = parent[key]
    return child


def _trimmed_steps(steps: list[dict[str, Any]], limit_days: int) -> list[tuple[dict[str, Any], int]]:
    """A taper's steps cut to ``limit_days`` in all, each with the days it keeps: steps run one
    after another (those sharing a ``sequence`` together), each keeps its own length while the
    limit lasts, a step of unknown length takes what is left, and steps past the limit go. One
    step simply gets the limit. Bounding every step by the limit would make a taper longer, and
    giving a group's instructions the group's length would lengthen its shorter ones."""
    if len(steps) == 1:
        return [(steps[0], limit_days)]
    groups: dict[object, list[dict[str, Any]]] = {}
    for index, dosage in sorted(enumerate(steps), key=_step_order):
        groups.setdefault(step_group(dosage, index), []).append(dosage)
    remaining, trimmed = limit_days, []
    for group in groups.values():
        if remaining <= 0:
            break
        lengths = [step_days(dosage) for dosage in group]
        known = [length for length in lengths if length is not None]
        allotted = max(min(remaining, math.ceil(max(known))) if known else remaining, 1)
        trimmed += [
            (dosage, allotted if length is None else max(min(allotted, math.ceil(length)), 1))
            for dosage, length in zip(group, lengths, strict=True)
        ]
        remaining -= allotted
    return trimmed


def _step_order(indexed: tuple[int, dict[str, Any]]) -> tuple[int, str, int]:
    """Steps run by ``sequence``, then by the start of their bounds period, then as listed."""
    index, dosage = indexed
    sequence = as_int(dosage.get("sequence"))
    ordinal = sequence if sequence is not None else 1 << 30
    start = as_obj(repeat_of(dosage).get("boundsPeriod")).get("start")
    return ordinal, start if isinstance(start, str) else "~", index


def _unit_of(order: Order) -> dict[str, str]:
    """Count units for a dispense quantity: the draft's own dose unit when it counts units."""
    fields = dialect(order.resource)  # once: it reads every instruction
    for dosage in as_list(order.resource.get("dosageInstruction")):
        for quantity in fields.doses(dosage) if isinstance(dosage, dict) else ():
            if not isinstance(quantity, dict):
                continue
            unit = str(quantity.get("code") or quantity.get("unit") or "")
            if unit.strip("{}").lower() in COUNT_UNITS:
                return {k: quantity[k] for k in ("unit", "system", "code") if k in quantity}
    form = order.drug.dose_form if order.drug and order.drug.dose_form else "tablet"
    return {"unit": form, "system": UCUM, "code": f"{{{form}}}"}


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
    new_rates: list[float | None] = []
    for dosage, rate, capped in zip(steps, _rates(order, steps), capped_rates(order, steps, max_per_day), strict=True):
        if capped == 0 and rate != 0:  # its group's share is used up
            continue
        fields.set_dose(dosage, {"value": 1, "unit": form, "system": UCUM, "code": f"{{{form}}}"})
        if capped != rate:
            repeat = writable_repeat(dosage)
            dosage["timing"].pop("code", None)
            for key in ("frequencyMax", "periodMax", "timeOfDay", "when", "periodUnit", "periodUnits"):
                repeat.pop(key, None)
            repeat.update({"frequency": capped, "period": 1, fields.period_unit: "d"})
        kept.append(dosage)
        new_rates.append(capped)
    if len(kept) < len(steps):
        resource["dosageInstruction"] = kept
    recount(order, resource, form, new_rates)
    return safe_update(order, resource)


def capped_rates(order: Order, steps: list[dict[str, Any]], max_per_day: float) -> list[float | None]:
    """Times a day of each instruction once those taken together (``step_group``) share
    ``max_per_day``, in the order listed: three times a day and one at bedtime is four a day,
    and becomes three times a day with the bedtime dose gone (0). A taper's steps each have the
    whole limit; an instruction whose frequency is unknown stays unknown."""
    left: dict[object, float] = {}
    capped: list[float | None] = []
    for index, (dosage, rate) in enumerate(zip(steps, _rates(order, steps), strict=True)):
        if rate is None:
            capped.append(None)
            continue
        group = step_group(dosage, index)
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
    """A dose change's dispensed count in what it now dispenses (one ``form`` a dose, at
    ``rates`` a day per instruction), for the days the draft's count lasted: two 2.8 mg tablets a
    day, 28 for 14 days, become one a day, 14; "14 capsules" of a tablet become 14 tablets. A
    quantity not counted in units (mL) stays, as does a count whose days cannot be read."""
    dispense = as_obj(resource.get("dispenseRequest"))
    quantity = dispense.get("quantity")
    if not isinstance(quantity, dict) or unit_of(quantity) not in COUNT_UNITS:
        return
    steps = dosages_of(resource)
    value, daily = as_num(quantity.get("value")), units_per_day(steps, [1.0] * len(steps), rates)
    counted = {**quantity, "unit": form, "system": UCUM, "code": f"{{{form}}}"}
    if value is not None and order.units_per_day and daily and math.isfinite(value * daily / order.units_per_day):
        counted["value"] = math.ceil(value * daily / order.units_per_day - 1e-9)
    dispense["quantity"] = counted


def service_request(
    *, patient_id: str, code: Code, reason: tuple[str, str] | None, order: Order | None = None
) -> dict[str, Any]:
    """A draft imaging order for ``code`` (a CPT procedure) with the condition that prompted it
    (``reason``: its reference and display), in the FHIR version of ``order``, the client's
    draft under review (pass it: without it the order is R4): R4 a ServiceRequest, STU3 a
    ProcedureRequest, DSTU2 a DiagnosticOrder (DSTU2's order for imaging, whose reason goes in
    ``supportingInformation``). ``patient_id`` is the hook context's, without "Patient/"."""
    kind = dialect(order.resource if order is not None else {}).service_request
    coded = {"coding": [{"system": CPT, "code": code.code, "display": code.display}], "text": code.display}
    resource: dict[str, Any] = {"resourceType": kind, "status": "draft"}
    if kind == "DiagnosticOrder":
        resource["item"] = [{"code": coded}]
    else:
        resource.update({"intent": "order", "code": coded})
    resource["subject"] = {"reference": f"Patient/{patient_id}"}
    if reason is not None:
        cited = [{"reference": reason[0], "display": reason[1]}]
        resource["supportingInformation" if kind == "DiagnosticOrder" else "reasonReference"] = cited
    return resource
