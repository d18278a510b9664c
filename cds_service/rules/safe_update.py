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
from cds_service.facts.dose import VOLUME_UNITS, counts_units, dosages_of, unit_of
from cds_service.facts.medications import sublingual_unread
from cds_service.facts.model import Order
from cds_service.facts.steps import tablets_in
from cds_service.fhir.json import as_list, as_num, as_obj, copy_json


def safe_update(order: Order, resource: dict[str, Any], product: Drug | None = None) -> dict[str, Any]:
    """``resource`` (an update of ``order``) made safe to accept: its dispensed quantity, where it
    gives one, never above the draft's (a sig of "1-2 tablets every 4-6 hours" must not turn into
    252 tablets), and no contained resource left that nothing references (a swapped medication).
    ``product``: the drug a swap changed it to, whose tablets it counts (``dispensed_at_most``)."""
    ordered = as_obj(order.resource.get("dispenseRequest")).get("quantity")
    dispense = resource.get("dispenseRequest")
    if isinstance(ordered, dict) and isinstance(dispense, dict) and (quantity := dispense.get("quantity")) is not None:
        readable = isinstance(quantity, dict)
        value = as_num(quantity.get("value")) if readable else None
        limit = dispensed_at_most(order, quantity, product) if readable else as_num(ordered.get("value"))
        if limit is not None and (value is None or value > limit):
            # In the draft's own words, or in whole tablets where it dispensed a mass of them.
            converted = limit != as_num(ordered.get("value")) and limit >= 1
            dispense["quantity"] = {**quantity, "value": math.floor(limit + 1e-9)} if converted else copy_json(ordered)
    return without_orphans(without_stale_words(named_as_read(order, resource)))


def dispensed_at_most(order: Order, quantity: dict[str, Any], product: Drug | None = None) -> float | None:
    """The most of ``quantity``'s unit the draft dispenses at once: its quantity as sent, or,
    where it dispenses a mass (210 mg) and ``quantity`` counts tablets, the tablets of its drug's
    strength that make it (21 of 10 mg). Compared as bare numbers, 63 tablets passed under 210 mg:
    630 mg at once, three times the draft's (a fixer's find). Of a swap's ``product``, its
    tablets: the mass stays the bound, 300 mg is 60 of 5 mg (as 30 of the draft's 10 mg, the
    swap limited to 21 days was half the draft's mass: a code review). A count stays a count."""
    ordered = as_obj(as_obj(order.resource.get("dispenseRequest")).get("quantity"))
    tablets = tablets_in(ordered, product or order.drug) if counts_units(quantity) else None
    if counts_units(quantity) and unit_of(ordered) in VOLUME_UNITS:
        return None  # tablets beside a liquid's 30 mL: no number compares them (63 tablets ≯ 30)
    return as_num(ordered.get("value")) if tablets is None else tablets


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
