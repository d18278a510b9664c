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
import re
from collections.abc import Iterable
from typing import Any

from cds_service.content.terminology import Drug, Terminology
from cds_service.facts.dose import nonpositive_dose
from cds_service.facts.model import ORDER_TYPES, Order
from cds_service.facts.sig import medication_order, service_order
from cds_service.fhir.json import (
    as_list,
    as_obj,
    as_str,
    bundle_resources,
    codes_of,
    full_urls,
    has_words,
    resource_list,
)
from cds_service.fhir.models import problems, read, without_nulls
from cds_service.fhir.versions import to_r4

log = logging.getLogger(__name__)


class MedicationIndex:
    """Medication resources a ``medicationReference`` may point at: contained, in the draft
    Bundle, prefetched or fetched. One per call, extended as resources arrive, and indexed when
    first asked: most orders name their drug by code, and a 500-entry history is not walked for
    a reference nobody follows. When one is, a Bundle is listed in C (``resource_list``) and read
    only if it holds a Medication: walking every entry cost ~170 µs a call of Epic's histories."""

    def __init__(self, sent: Iterable[Any] = (), by_url: dict[str, Any] | None = None) -> None:
        """``sent``: Bundles (or single resources) as the request brought them, unchecked."""
        self._by_ref: dict[str, dict[str, Any]] = {}
        self._sent: list[Any] = list(sent)
        self._listed: list[list[dict[str, Any]]] = []  # fetched, or sent with a Medication among them
        # The draft Bundle's resources by their entries' ``fullUrl`` (a ``urn:uuid:`` for one not
        # yet on a server): how a Bundle's entries refer to each other.
        self._by_url = by_url or {}
        # What was sent whose entries' ``fullUrl``s are not read yet: only a ``urn:`` reference
        # needs them (a Synthea-style history's), and most calls follow none.
        self._urls_unread: list[Any] = list(self._sent)

    def add(self, resources: list[dict[str, Any]]) -> None:
        """Resources read since (fetched from fhirServer)."""
        self._listed.append(resources)

    def unnamed(self, orders: list[dict[str, Any]], server: str) -> tuple[str, ...]:
        """The ids of the Medications on ``server`` that ``orders`` name only by reference and
        that are not here: without them those orders name no drug. ``server`` "" (none given):
        the relative references' ids."""
        ids = _unnamed_ids(orders, server.rstrip("/"))
        return tuple(i for i in ids if self._get(f"Medication/{i}") is None)

    def leads_nowhere(self, raw: dict[str, Any]) -> bool:
        """Does a raw MedicationRequest name its drug by a reference that leads to none (no
        Medication found, or one without a code, and no display)? It cannot be checked, and the
        answer says so; a draft with no drug chosen yet (the sandbox's Rx View) is not one."""
        reference = _one(raw.get("medicationReference"))
        if raw.get("medicationCodeableConcept") is not None or reference is None or not _points_somewhere(reference):
            return False
        return names_nothing(self.concept(raw) or {})

    def _get(self, reference: str) -> dict[str, Any] | None:
        if self._sent or self._listed:  # asked once an order, ~300 times a call of Epic's: indexed once
            self._index()
        entry = self._by_url.get(reference)
        if entry is None and self._urls_unread and reference.startswith("urn:"):
            for value in self._urls_unread:
                self._by_url = full_urls(value) | self._by_url  # the first met wins: the draft Bundle's
            self._urls_unread = []
            entry = self._by_url.get(reference)
        if isinstance(entry, dict) and entry.get("resourceType") == "Medication":
            return entry
        return self._by_ref.get(reference) or self._by_ref.get(_type_and_id(reference))

    def _index(self) -> None:
        listed = (resource_list(value) for value in self._sent)
        # What the request brought goes before what was fetched: the first met wins, below.
        self._listed[:0] = [resources for resources, kinds in listed if "Medication" in kinds]
        for resources in self._listed:
            found = {
                f"Medication/{r['id']}": r for r in resources if r.get("resourceType") == "Medication" and r.get("id")
            }
            self._by_ref = found | self._by_ref  # the first met wins: the draft Bundle's, then the prefetch's
        self._sent.clear()
        self._listed.clear()

    def identify(self, raw: dict[str, Any], terminology: Terminology) -> Drug | None:
        """The drug a raw MedicationRequest orders, from raw JSON (cheap: no validation)."""
        concept = self.concept(raw)
        return None if concept is None else drug_named(concept, terminology)

    def concept(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The concept naming a raw MedicationRequest's drug: its own, or its Medication's code. Apart
        from the drug, so that a history's courses keep what a concept means by its JSON text
        (``fhir.memo``) however the order names it."""
        concept = raw.get("medicationCodeableConcept")
        reference = _one(raw.get("medicationReference"))
        if concept is None and reference is not None:
            return self._referenced(raw, reference)
        return _one(concept)

    def _referenced(self, raw: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
        """The concept a reference leads to: its Medication's code, with the reference's display as
        its text when the code has no words of its own (a local or NDC code alone named nothing,
        and the card was lost though the display named the drug); the display alone when no
        Medication is found."""
        ref = _reference_text(reference)
        if ref.startswith("#"):
            medication = next((c for c in as_list(raw.get("contained")) if _is_medication(c, ref[1:])), None)
        else:
            medication = self._get(ref) if ref else None
        code = _one((medication or {}).get("code"))
        display = as_str(reference.get("display"))
        if code is None:
            return {"text": display}
        # The Medication is the record, the display a label: it stands in only for words the code lacks.
        words = as_str(code.get("text")) or any(as_str(as_obj(c).get("display")) for c in as_list(code.get("coding")))
        return code if words or not display else {**code, "text": display}


def names_nothing(concept: dict[str, Any]) -> bool:
    """A concept no drug can be read from: no words of its own and no code (``drug_named``
    reads nothing else). The same test for a draft and for the history's orders."""
    return not has_words(concept.get("text")) and not codes_of(concept)


def _points_somewhere(reference: dict[str, Any]) -> bool:
    """Does a reference point at anything: not the blanks a client may fill in before a drug is
    chosen ("", "#", "Medication/")?"""
    ref = _reference_text(reference)
    if ref.lstrip("#") and ref.rsplit("/", 1)[-1] != "Medication":
        return True
    return has_words(as_obj(reference.get("identifier")).get("value"))


def _reference_text(reference: dict[str, Any]) -> str:
    return (as_str(reference.get("reference")) or "").strip().rstrip("/")  # "Medication/m1/" is Medication/m1


# The orders that may name their drug by reference (DSTU2's ``MedicationOrder`` too).
_MEDICATION_ORDERS = ("MedicationRequest", "MedicationOrder")
# Orders never given: no check reads them, so neither is their Medication asked for (a failed
# search would have said the history read in part for them).
_NEVER_GIVEN = ("entered-in-error", "cancelled")
# A FHIR id: what may go into a search's ``_id`` list unescaped.
_FHIR_ID = re.compile(r"[A-Za-z0-9.-]{1,64}")


def _unnamed_ids(resources: list[dict[str, Any]], base: str) -> list[str]:
    """The ids of the Medications on the server at ``base`` that orders among ``resources`` name
    by reference alone (no display) and that ``resources`` do not hold: read nowhere else, such
    an order names no drug, and a duplicate therapy on it went unseen."""
    # Asked of every history sent with a fhirServer: most name their drugs inline, and one pass
    # asking one question of each entry is all they cost (~5 µs for 500 entries).
    by_reference = [r for r in resources if "medicationReference" in r]
    if not by_reference:
        return []
    held = {as_str(r.get("id")) for r in resources if r.get("resourceType") == "Medication"}
    wanted: dict[str, None] = {}
    for resource in by_reference:
        if (
            resource.get("resourceType") not in _MEDICATION_ORDERS
            or resource.get("medicationCodeableConcept") is not None
            or resource.get("status") in _NEVER_GIVEN
        ):
            continue  # a concept, even an empty one, is what ``concept`` reads: the reference is not followed
        reference = _one(resource.get("medicationReference"))
        ref = _reference_text(reference) if reference is not None and not has_words(reference.get("display")) else ""
        if (":" in ref or ref.startswith("//")) and not ref.startswith(f"{base}/"):
            continue  # on another server (``//host/…`` too), or no server's (``urn:uuid:``)
        kind, _, id_ = _type_and_id(ref).partition("/")
        if kind == "Medication" and id_ not in held and _FHIR_ID.fullmatch(id_):
            wanted[id_] = None
    return list(wanted)


def _one(value: Any) -> dict[str, Any] | None:
    """An object, or the first of an array of them: one sent as an array (as other arrays come as
    one object) is that one."""
    if isinstance(value, list):
        return next((v for v in value if isinstance(v, dict)), None)
    return value if isinstance(value, dict) else None


def _is_medication(resource: Any, id_: str) -> bool:
    """A contained resource of another type with the id (a Substance, say) names no drug: the
    reference is then read by its display alone, as one that leads nowhere is. One with no type
    at all is read as the Medication it is referenced as (tolerantly, as the rest is read), and
    so is one whose id was written with the reference's ``#`` (``"id": "#m1"``, as some clients do)."""
    kind = resource.get("resourceType", "Medication") if isinstance(resource, dict) else None
    return kind == "Medication" and resource.get("id") in (id_, f"#{id_}")


def drug_named(concept: dict[str, Any], terminology: Terminology) -> Drug | None:
    """The drug a medication concept names, by its codes, else its text or displays."""
    return terminology.drug(codes_of(concept), as_str(concept.get("text")))


def _type_and_id(reference: str) -> str:
    """``Medication/x`` of a reference absolute or versioned (``.../Medication/x/_history/2``)."""
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:])


# Stands in for the id of a draft that has none: ":" is not allowed in a FHIR id, so it never
# meets a real one; the order is reviewed under it, and it is never sent back to the client.
NO_ID = "no-id:"
NO_ID_REASON = "The order has no id, so no change can be offered."
UNSOUND_REASON = "The order as sent is incomplete, so no edit to it can be offered."
_ORDERED = ("medicationCodeableConcept", "medicationReference", "code", "codeCodeableConcept", "item")


def draft_orders(draft_bundle: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The order resources of a ``draftOrders`` Bundle, in the client's FHIR version; one without
    an ``id`` is given a stand-in (``NO_ID`` and its place), so it is reviewed like the others."""
    orders = []
    for index, resource in enumerate(r for r in bundle_resources(draft_bundle) if r.get("resourceType") in ORDER_TYPES):
        if not as_str(resource.get("id")):
            resource = {**resource, "id": f"{NO_ID}{index + 1}"}
        orders.append(resource)
    return orders


def has_id(order: Order) -> bool:
    """Does the client's draft have an id of its own (so a suggestion can name it)?"""
    return _has_own_id(order.reference)


def _has_own_id(reference: str) -> bool:
    return not reference.split("/", 1)[-1].startswith(NO_ID)


def no_change_reason(order: Order, actions: Iterable[str]) -> str | None:
    """Why suggestions with these action types cannot be offered for ``order``, or None: a draft
    without an id can be neither updated nor deleted; an unsound one (rejected by the R4 model)
    cannot be sent back as an update, though it can be removed by its id."""
    kinds = set(actions)
    if not has_id(order) and kinds & {"update", "delete"}:
        return NO_ID_REASON
    if "update" in kinds and not _sound(order):
        return UNSOUND_REASON
    return None


def _sound(order: Order) -> bool:
    """Does the R4 model accept the draft, and does it give no dose of zero or less (the model
    allows one)? Asked only for an order a card wants to update: the model costs more than
    everything else a small call does. The log names the fields, at INFO."""
    found = problems(order.r4) or ("a dose of zero or less" if nonpositive_dose(order.r4) else None)
    if found is not None:
        kind = order.reference.partition("/")[0]  # never the id: an EHR may build it from the patient's
        log.info("a %s in draftOrders read tolerantly, no edit offered: %s", kind, found)
    return found is None


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
            orders.append(medication_order(facts, reference, resource, drug, terminology))
        else:
            orders.append(service_order(facts, reference, resource))
    return orders


def _log_reading(reference: str, raw: dict[str, Any]) -> None:
    """A draft with nothing ordered yet (the sandbox opens Rx View with no drug chosen) or with
    no id is normal client behaviour: said at DEBUG, never louder."""
    kind = raw["resourceType"]
    if not _has_own_id(reference):
        log.debug("%s in draftOrders has no id: reviewed, no change can be offered", kind)
    if not any(raw.get(key) for key in _ORDERED):
        log.debug("a %s in draftOrders orders nothing yet", kind)
