"""Every update is safe to accept (clinical specification §2): whatever a rule changed in the
draft, the update dispenses no more than the draft ordered, leaves no contained resource
that nothing references (FHIR dom-3), keeps none of the draft's words for the order (they
described it before the change; an "as needed" they said stays, coded), and names its drug
without an "SL" or a sublingual brand the drug was not read by.
Applied by the rules' builders of an update as they make it (``rules.duration_update``,
``rules.product_swap``, ``rules.common``), and again to every update by ``pipeline.cards`` as it
composes the other findings' limits into it (there may be none).
"""

from __future__ import annotations

import math
from typing import Any

from cds_service.content.terminology import Drug
from cds_service.content.terminology.names import name_as_read
from cds_service.facts.as_needed import as_needed
from cds_service.facts.dose import dosages_of, units_per_day
from cds_service.facts.medications import sublingual_unread
from cds_service.facts.model import Order
from cds_service.facts.sig import bounded_days
from cds_service.facts.steps import days_of, tablets_in, tablets_of
from cds_service.facts.units import MG_FACTOR, ML_FACTOR, VOLUME_UNITS, counts_units, each_or_none, unit_of
from cds_service.fhir.json import as_list, as_num, as_obj, copy_json
from cds_service.rules.actions import days

# The draft's quantities a swap counts by the days they last (``dispensed_days``).
_MASS_OR_VOLUME = VOLUME_UNITS | MG_FACTOR.keys()


def safe_update(order: Order, resource: dict[str, Any], product: Drug | None = None) -> dict[str, Any]:
    """``resource`` (an update of ``order``) made safe to accept: its dispensed quantity, where it
    gives one, never above the draft's (a sig of "1-2 tablets every 4-6 hours" must not turn into
    252 tablets), and no contained resource left that nothing references (a swapped medication).
    ``product``: the drug a swap changed it to, one tablet a dose (``dispensed_at_most``), the
    draft's own 5 mg tablet too; None for an update that keeps the draft's doses' tablets (the
    duration card's) or is no swap (the sublingual start dose)."""
    ordered = as_obj(order.resource.get("dispenseRequest")).get("quantity")
    dispense = resource.get("dispenseRequest")
    if isinstance(ordered, dict) and isinstance(dispense, dict) and (quantity := dispense.get("quantity")) is not None:
        readable = isinstance(quantity, dict)
        value = as_num(quantity.get("value")) if readable else None
        limit = dispensed_at_most(order, quantity, product) if readable else as_num(ordered.get("value"))
        if readable and product is not None and _no_tablets_read(ordered) and not (limit or 0) >= 1:
            del dispense["quantity"]  # tablets for days of a liquid or a bottle not read: none, not a guess
            dispense.pop("initialFill", None)  # nor a first fill of them
        elif limit is not None and (value is None or value > limit):
            # In the draft's own words, or in whole tablets where it dispensed a mass of them.
            tablets = _in_tablets(quantity, ordered, product is not None)
            converted = limit >= 1 and (limit != as_num(ordered.get("value")) or tablets)
            dispense["quantity"] = {**quantity, "value": math.floor(limit + 1e-9)} if converted else copy_json(ordered)
            if converted and value and tablets:
                _supply_cut(dispense, math.floor(limit + 1e-9) / value)
        if not dispense:  # FHIR has no empty objects
            del resource["dispenseRequest"]
    return without_orphans(without_stale_words(named_as_read(order, resource)))


def dispensed_at_most(order: Order, quantity: dict[str, Any], product: Drug | None = None) -> float | None:
    """The most of ``quantity``'s unit the draft dispenses at once: its quantity as sent, or,
    where it dispenses a mass (210 mg) and ``quantity`` counts tablets, the tablets of its drug's
    strength that make it (21 of 10 mg). Compared as bare numbers, 63 tablets passed under 210 mg:
    630 mg at once, three times the draft's (a fixer's find). A swap's (``product`` given) tablets,
    one a dose, for the days the draft's mass or volume lasts (``dispensed_days``) at its doses a day:
    210 mg of the 10 mg tablet three times a day is 7 days, 21 of 5 mg; 30 mL at 10 mL three
    times a day is a day, 3. Counted as the 5 mg tablets the mass makes, 42, the swap doubled the
    draft's days; a volume had no cap, and 30 mL went out as 63 tablets (a pharmacist's review).
    So is a swap to the draft's own 5 mg tablet, two a dose made one: the 42 tablets its 210 mg
    make had been its cap, 14 days where the draft's lasted 7. A unit no tablet count is read
    from, a container ("1 bottle"), lasts the days the draft's supply or bounds give
    (``_fill_days``): compared as a bare number, 30 tablets were over its 1, and "1 bottle" went
    back as the quantity of the 5 mg tablets (a review). Days of a liquid or a bottle unread: None
    (``safe_update`` then writes no quantity). "each" ("30 each", "30 EA", UCUM's "1": a tablet as
    often as not) is its bare number, the cap in its own words: read as a bottle, "30 each" with no
    days had no cap, and a 21-day swap could fill 63 tablets (a review). A count stays a count."""
    ordered = as_obj(as_obj(order.resource.get("dispenseRequest")).get("quantity"))
    if not counts_units(quantity):
        return as_num(ordered.get("value"))
    if product is not None and (unit_of(ordered) in MG_FACTOR or _no_tablets_read(ordered)):
        lasts = dispensed_days(order, ordered) if unit_of(ordered) in _MASS_OR_VOLUME else _fill_days(order)
        if lasts is not None and order.per_day:
            return lasts * order.per_day
        if _no_tablets_read(ordered):
            return None  # tablets beside a liquid's 30 mL or "1 bottle": no number compares them
    elif unit_of(ordered) in VOLUME_UNITS:
        return None  # tablets beside a liquid's 30 mL: no number compares them (63 tablets ≯ 30)
    tablets = tablets_in(ordered, order.drug)
    return as_num(ordered.get("value")) if tablets is None else tablets


def _no_tablets_read(ordered: dict[str, Any]) -> bool:
    """Is the draft's quantity one no count of tablets is read from: a volume, or a container, any
    unit neither a count, a mass nor "each" (``facts.units.each_or_none``): "1 bottle", "1 btl",
    "1 pkg", "1 tube", "Bottle" coded UCUM "1". Only containers listed by name were so read, and
    "1 btl" went back as the quantity of the 5 mg tablets (a review)."""
    unit = unit_of(ordered)
    return unit in VOLUME_UNITS or not (unit in MG_FACTOR or counts_units(ordered) or each_or_none(ordered))


def _fill_days(order: Order) -> float | None:
    """The days one fill of the draft lasts by its own words: its supply (a day or more), within
    its dosage bounds (§1), else its bounds; None where neither says."""
    supply = days_of(as_obj(as_obj(order.r4.get("dispenseRequest")).get("expectedSupplyDuration")))
    supply = supply if supply is not None and 1 <= supply < 1e5 else None  # a 12-hour supply is none
    bounded = bounded_days(order.r4)
    return min(supply, bounded or supply) if supply is not None else bounded


def _in_tablets(quantity: dict[str, Any], ordered: dict[str, Any], swap: bool) -> bool:
    """Tablets capped by a draft's mass or volume, or a swap's by a container: 3 of 3 mL are 3
    tablets, not the 3 mL (the duration update's "1 bottle", of the drug it keeps, stays the cap
    in its own words)."""
    return counts_units(quantity) and (unit_of(ordered) in _MASS_OR_VOLUME or (swap and _no_tablets_read(ordered)))


def _supply_cut(dispense: dict[str, Any], share: float) -> None:
    """The supply of tablets cut to ``share`` of them, in the whole days they last: 63 tablets for
    21 days capped at the 30 a 300 mL liquid's 10 days make are a 10-day supply, not 21."""
    supply = days_of(as_obj(dispense.get("expectedSupplyDuration")))
    if supply is not None and supply >= 1 and share < 1:
        dispense["expectedSupplyDuration"] = days(max(math.floor(supply * share + 1e-9), 1))


def dispensed_days(order: Order, quantity: dict[str, Any]) -> float | None:
    """The days a dispensed ``quantity`` lasts at the draft's own dose: its tablets (a mass as its
    drug's: ``tablets_of``) over its units a day; a volume over the volume its instructions take a
    day (each dose in mL, times a day; those taken together add up, a taper's highest step). None
    where either is not read (a dose in mg of a liquid, no frequency)."""
    value, unit = as_num(quantity.get("value")), unit_of(quantity)
    if unit not in VOLUME_UNITS:
        tablets = tablets_of(quantity, order.drug)
        lasts = tablets / order.units_per_day if tablets is not None and order.units_per_day else None
        return lasts if lasts is not None and math.isfinite(lasts) else None
    steps = dosages_of(order.r4)
    rates = order.step_per_day if len(order.step_per_day) == len(steps) else ()
    volumes = [_volume_of_dose(dosage) for dosage in steps]
    daily = units_per_day(steps, volumes, rates) if rates and None not in (*volumes, *rates) else None
    lasts = value * ML_FACTOR[unit] / daily if value is not None and value > 0 and daily else None
    return lasts if lasts is not None and math.isfinite(lasts) else None


def _volume_of_dose(dosage: dict[str, Any]) -> float | None:
    """One dose in mL (R4: its first ``doseQuantity``, or a range's ``high``); None for another unit."""
    for dose_and_rate in map(as_obj, as_list(dosage.get("doseAndRate"))):
        quantity = dose_and_rate.get("doseQuantity", as_obj(dose_and_rate.get("doseRange")).get("high"))
        if isinstance(quantity, dict):
            value, unit = as_num(quantity.get("value")), unit_of(quantity)
            return value * ML_FACTOR[unit] if value is not None and value > 0 and unit in VOLUME_UNITS else None
    return None


def named_as_read(order: Order, resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` naming its drug without the "SL" or the sublingual brand the draft's drug was
    not read by: written "cyclobenzaprine 10 mg tablet SL" (no sublingual product comes in 10 mg),
    or "Tonmya 2.8 mg" beside the oral 10 mg tablet's code, it was read, and changed, as the oral
    tablet, and sent back so named it was a sublingual order to the EHR that shows it. Only those
    words go, the rest the prescriber's own, as the cards name it (a swap names its new product
    anyway), but for a name that names no drug as read without its brand ("2.8 mg"): it goes, and
    the EHR names the drug from its codes. The card says so (``facts.orders.sublingual_left_out``).
    A dosage's route is not read, nor changed."""
    drug, brands = order.drug, order.brands_unread
    for holder, key in sublingual_unread(drug, resource, brands):
        if drug is not None and (named := name_as_read(holder[key], drug, brands)):
            holder[key] = named
        else:
            del holder[key]
    return resource


def without_stale_words(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` without its narrative, nor its instructions' words (sig text, patient
    instructions): "Take 1 tablet (10 mg) daily for 30 days" on a 5 mg order for 21 days would
    reach a pharmacy label; the EHR writes them again from the codes, and the card tells the
    clinician (``facts.orders.words_left_out``). A draft whose words alone say its dose or how
    often is offered no update (``facts.orders.no_change_reason``): its codes do not say it all.
    Words that say it is taken as needed stay said, in its code (``keep_as_needed``)."""
    resource.pop("text", None)
    for dosage in dosages_of(resource):
        keep_as_needed(dosage)
        dosage.pop("text", None)
        dosage.pop("patientInstruction", None)
    return resource


def keep_as_needed(dosage: dict[str, Any]) -> None:
    """An instruction as needed by its timing code's words alone ("TID PRN") stays so in its code
    (``asNeededBoolean``) once the 5 mg swap rewrites the timing code to its cap: sent back as
    three times a day, it was a dose every day. (A sig's words alone are no update's: ``facts.orders``.)"""
    if as_needed(dosage) and not any(key.startswith("asNeeded") for key in dosage):
        dosage["asNeededBoolean"] = True


def without_orphans(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` without the contained resources nothing references (FHIR dom-3): those
    referenced from the resource or from a contained resource that stays, or that refer to
    the container (``#``), are kept. Linear in the contained resources: a chain of thousands,
    each referring to the next, took a minute when every round rescanned them all."""
    contained = [c for c in as_list(resource.get("contained")) if isinstance(c, dict)]
    if not contained:
        return resource
    references = [_references(c) for c in contained]
    by_id: dict[str, list[int]] = {}
    for index, item in enumerate(contained):
        by_id.setdefault(f"#{item.get('id')}", []).append(index)
    outside = _references({k: v for k, v in resource.items() if k != "contained"})
    to_visit = [i for i, refs in enumerate(references) if "#" in refs]
    to_visit += [i for ref in outside for i in by_id.get(ref, ())]
    kept: set[int] = set()
    while to_visit:
        index = to_visit.pop()
        if index not in kept:
            kept.add(index)
            to_visit += [i for ref in references[index] for i in by_id.get(ref, ()) if i not in kept]
    if kept:
        resource["contained"] = [c for index, c in enumerate(contained) if index in kept]
    else:
        resource.pop("contained", None)
    return resource


def _references(value: Any) -> set[str]:
    """Every ``reference`` string in ``value``, at any depth."""
    if isinstance(value, dict):
        found = {value["reference"]} if isinstance(value.get("reference"), str) else set()
        for item in value.values():
            found |= _references(item)
        return found
    if isinstance(value, list):
        return set().union(*(_references(item) for item in value)) if value else set()
    return set()
