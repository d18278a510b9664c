"""The draft orders: their facts read as R4, tolerantly; what suggestions may do with each.

The reference and the JSON that suggestions send back stay in the client's own FHIR version.
Real clients send drafts the strict R4 models reject (no ``subject``, no ``intent`` yet) and
drafts with no ``id`` at all (HL7 PDDI-CDS's order-sign requests): both are still reviewed,
their facts read field by field, but a suggestion that would send such a draft back (an
update) or name it (a delete by id) is not offered, and the card says why
(``no_change_reason``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from cds_service.content.notes import BRAND_LEFT_OUT, BRAND_NAME_LEFT_OUT, SUBLINGUAL_LEFT_OUT, WORDS_LEFT_OUT, Note
from cds_service.content.terminology import Terminology
from cds_service.content.terminology.names import name_as_read, says_sublingual
from cds_service.facts.as_needed import says_as_needed
from cds_service.facts.bounds import dated_in_the_last_year
from cds_service.facts.dose import (
    coded_dose,
    dosages_of,
    instruction_words,
    nonpositive_amount,
    times_against_frequency,
)
from cds_service.facts.medications import MedicationIndex, drug_labels, sublingual_unread
from cds_service.facts.model import ORDER_TYPES, WITHDRAWN, Order
from cds_service.facts.sig import medication_order, service_order
from cds_service.facts.together import runs_on_into_another, runs_partly_together
from cds_service.fhir.json import as_list, as_obj, as_str, bundle_resources
from cds_service.fhir.models import OVER_BUDGET, TOO_LARGE, ModelBudget, problems, read, without_nulls
from cds_service.fhir.versions import to_r4

log = logging.getLogger(__name__)


# Stands in for the id of a draft that has none: ":" is not allowed in a FHIR id, so it never
# meets a real one; the order is reviewed under it, and it is never sent back to the client.
NO_ID = "no-id:"
NO_ID_REASON = "The order has no id, so no change can be offered."
UNSOUND_REASON = "The order as sent is incomplete, so no edit to it can be offered."
TOO_LARGE_REASON = "The order as sent is too large to check, so no edit to it can be offered."
OVER_BUDGET_REASON = (
    "The orders sent together are too large to check, so no edit to this one can be offered: review fewer at once."
)
NONPOSITIVE_REASON = "The order gives an amount of zero or less, so no edit to it can be offered: correct the order."
PARTLY_TOGETHER_REASON = (
    "The order's dated instructions overlap on some days only, so no one-click dose change is "
    "offered: edit the order itself."
)
RUNS_ON_REASON = (
    "The order has a dated instruction with no end before another one begins, so whether it stops "
    "then is not said and no one-click change is offered: edit the order itself."
)
TIMES_REASON = (
    "The order's times of day count more doses a day than its frequency says (its dose is checked "
    "at the times, its course at the frequency), so no one-click change is offered: edit the order itself."
)
LAST_YEAR_REASON = "The order is dated in the year 9999, so no edit to it can be offered: correct the order."
WORDS_ONLY_REASON = (
    "The order gives its dose, how often or that it is as needed only in words, so no one-click "
    "change is offered: edit the order itself before signing."
)
# A dose change whose other findings' limit (the shorter course) cannot be written into it
# (``rules.NoChange``): what is withheld is the dose change, not the course's own update.
UNWRITTEN_LIMIT_REASON = (
    "The dose change would carry the shorter course, which cannot be written for this order, so "
    "it is not offered either: edit the order itself."
)
# What a card says of a draft the R4 model was not asked to check.
_NOT_CHECKED = {TOO_LARGE: TOO_LARGE_REASON, OVER_BUDGET: OVER_BUDGET_REASON}
_ORDERED = ("medicationCodeableConcept", "medicationReference", "code", "codeCodeableConcept", "item")


def draft_orders(draft_bundle: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The order resources of a ``draftOrders`` Bundle (``listed_orders``) but those withdrawn
    (``facts.model.WITHDRAWN``)."""
    return [r for r in listed_orders(draft_bundle) if (as_str(r.get("status")) or "").lower() not in WITHDRAWN]


def listed_orders(draft_bundle: Any) -> list[dict[str, Any]]:
    """Every order resource of a ``draftOrders`` Bundle as the EHR listed them, in its FHIR
    version; one without an ``id`` (or with one that is no string) given a stand-in, ``NO_ID``
    and its place among them, so it is reviewed like the others and a notice can say which."""
    listed = (r for r in bundle_resources(draft_bundle) if r.get("resourceType") in ORDER_TYPES)
    return [r if as_str(r.get("id")) else {**r, "id": f"{NO_ID}{n}"} for n, r in enumerate(listed, 1)]


def has_id(order: Order) -> bool:
    """Does the client's draft have an id of its own (so a suggestion can name it)?"""
    return _has_own_id(order.reference)


def _has_own_id(reference: str) -> bool:
    return not reference.split("/", 1)[-1].startswith(NO_ID)


def no_change_reason(
    order: Order, actions: Iterable[str], dose_change: bool = False, budget: ModelBudget | None = None
) -> str | None:
    """Why suggestions with these action types cannot be offered for ``order``, or None: a draft
    without an id can be neither updated nor deleted; an unsound one (rejected by the R4 model)
    cannot be sent back as an update, though it can be removed by its id; a dose change (the 5 mg
    swap, one tablet three times a day in all) of steps that run together on some days only
    would say one sig of several (``facts.together.runs_partly_together``); nor an update (the
    duration limit) of a dated step with no end before another begins: where it stops, the order
    does not say (``facts.together.runs_on_into_another``); nor of an instruction whose times of
    day count more doses a day than its frequency (``dose.times_against_frequency``): an update
    would write one reading of an order that says two, but for a change of its whole timing
    (``_rewrites_timing``: the sublingual swap's once a day at bedtime settles it). ``budget``:
    what the call may still have the R4 model check (``models.CALL_MODEL_VALUES``)."""
    kinds = set(actions)
    if not has_id(order) and kinds & {"update", "delete"}:
        return NO_ID_REASON
    if "update" in kinds and (unsound := _unsound(order, budget)):
        return unsound
    if "update" in kinds and _words_only(order):
        return WORDS_ONLY_REASON
    if dose_change and runs_partly_together(dosages_of(order.resource)):
        return PARTLY_TOGETHER_REASON
    if "update" in kinds and runs_on_into_another(dosages_of(order.resource)):
        return RUNS_ON_REASON
    if "update" in kinds and not _rewrites_timing(order, dose_change) and _times_against(order):
        return TIMES_REASON
    return None


def _rewrites_timing(order: Order, dose_change: bool) -> bool:
    """Does the change write the whole timing anew? The sublingual swap (``rules.common``) makes
    every instruction one tablet once a day at bedtime: it keeps no reading of the old one."""
    return dose_change and order.drug is not None and order.drug.sublingual


def _times_against(order: Order) -> bool:
    return any(map(times_against_frequency, dosages_of(order.resource)))


def words_left_out(order: Order) -> Note | None:
    """What a card offering an update says of the draft's words for it, which the update leaves
    out (``rules.safe_update``): "take with food" may still apply, and only the clinician knows."""
    return Note(WORDS_LEFT_OUT) if any(instruction_words(d) for d in dosages_of(order.resource)) else None


def sublingual_left_out(order: Order, updates: list[dict[str, Any]]) -> Note | None:
    """What a card offering an update says of an "SL" or a sublingual brand its drug was not read
    by, which an update keeping the drug leaves out of its name, or its whole name where nothing
    sensible is left (``rules.safe_update.named_as_read``): the prescriber wrote it. A swap names
    its new product: nothing to say of the old one's name."""
    brands = order.brands_unread
    labels = sublingual_unread(order.drug, order.resource, brands)
    if not labels or order.drug is None:  # nearly every order: nothing said
        return None
    if not any(_drug_coded(update) == _drug_coded(order.resource) for update in updates):
        return None
    if not brands:
        return Note(SUBLINGUAL_LEFT_OUT)
    names = [holder[key] for holder, key in labels]
    if not any(name_as_read(name, order.drug, brands) for name in names):
        return Note(BRAND_NAME_LEFT_OUT, (("brand", brands[0]),))
    said = [*brands, *(["SL"] if any(says_sublingual(name) for name in names) else [])]
    return Note(BRAND_LEFT_OUT, (("brand", brands[0]), ("said", " and ".join(f'"{word}"' for word in said))))


def _drug_coded(resource: dict[str, Any]) -> tuple[object, ...]:
    """The codes and the reference a MedicationRequest names its drug by, not its words."""
    concept = as_obj(resource.get("medicationCodeableConcept"))
    codes = [(c.get("system"), c.get("code")) for c in as_list(concept.get("coding")) if isinstance(c, dict)]
    return (*codes, as_obj(resource.get("medicationReference")).get("reference"))


def _words_only(order: Order) -> bool:
    """Does an instruction with words give its dose, how often, or that it is taken as needed in
    them alone ("Take 1 tablet (10 mg) three times a day", "1 tab tid prn")? How often is read as
    the facts read it (a frequency over its period, a timing code, times of day). An update
    changes the codes and leaves the words out (``rules.safe_update``): the EHR writes them again
    from codes that would not say it all."""
    dosages = dosages_of(order.resource)
    per_day = order.step_per_day if len(order.step_per_day) == len(dosages) else (None,) * len(dosages)
    return any(
        words and (rate is None or not coded_dose(d) or says_as_needed(d))
        for d, rate in zip(dosages, per_day, strict=True)
        if (words := instruction_words(d))
    )


def _unsound(order: Order, budget: ModelBudget | None) -> str | None:
    """Why the draft cannot be sent back as an update, or None: the R4 model rejects it
    (incomplete) or the draft is too large for it to check (``models.MODEL_VALUES``; or the call's
    drafts, ``models.CALL_MODEL_VALUES``), or it gives
    a dose, rate, period, duration or dispensed quantity of zero or less (the model allows them;
    sent back, the update would keep it), or it starts in the year 9999. Asked only for an order a
    card wants to update: the model costs more than everything else a small call does. The log
    names the fields, at INFO."""
    found = problems(order.r4, budget)
    reason = None if found is None else _NOT_CHECKED.get(found, UNSOUND_REASON)
    if found is None and (found := nonpositive_amount(order.r4)) is not None:
        reason = NONPOSITIVE_REASON
    if found is None and (found := dated_in_the_last_year(order.r4)) is not None:
        reason = LAST_YEAR_REASON
    if found is not None:
        kind = order.reference.partition("/")[0]  # never the id: an EHR may build it from the patient's
        log.info("a %s in draftOrders read tolerantly, no edit offered: %s", kind, found)
    return reason


def read_orders(drafts: list[dict[str, Any]], terminology: Terminology, medications: MedicationIndex) -> list[Order]:
    """Orders from the drafts: facts from each one's R4 form (kept on the order, converted once),
    read field by field whether or not the strict model accepts it, while the reference and the
    JSON that suggestions send back stay in the client's own FHIR version."""
    orders = []
    for raw in drafts:
        reference = f"{raw['resourceType']}/{raw['id']}"
        own = raw if _has_own_id(reference) else {k: v for k, v in raw.items() if k != "id"}
        r4 = to_r4(own)
        facts = read(r4 or own)
        if facts is None:
            continue
        _log_reading(reference, own)
        resource = without_nulls(own) if r4 is not None else facts
        if facts["resourceType"] == "MedicationRequest":
            drug = medications.identify(facts, terminology)
            order = medication_order(facts, reference, resource, drug, terminology)
            orders.append(_with_brands_unread(order, terminology))
        else:
            orders.append(service_order(facts, reference, resource))
    return orders


def _with_brands_unread(order: Order, terminology: Terminology) -> Order:
    """``order`` knowing the sublingual brands its drug's words name where its codes rule them out
    ("Tonmya 2.8 mg" beside the oral 10 mg tablet's code): an update sent back so named would be a
    sublingual product's name on an oral order."""
    if order.drug is None or order.drug.sublingual:
        return order
    brands = terminology.sublingual_brands(holder[key] for holder, key in drug_labels(order.resource))
    return replace(order, brands_unread=brands) if brands else order


def _log_reading(reference: str, raw: dict[str, Any]) -> None:
    """A draft with nothing ordered yet (the sandbox opens Rx View with no drug chosen) or with
    no id is normal client behaviour: said at DEBUG, never louder."""
    kind = raw["resourceType"]
    if not _has_own_id(reference):
        log.debug("%s in draftOrders has no id: reviewed, no change can be offered", kind)
    if not any(raw.get(key) for key in _ORDERED):
        log.debug("a %s in draftOrders orders nothing yet", kind)
