"""The drug an order names by ``medicationReference``: a Medication resource in the draft
Bundle (contained, by id, or by an entry's ``fullUrl``), in the prefetched history beside the
orders, or read from ``fhirServer``; and which Medications are still to be asked for.

Epic names most drugs this way; a reference that leads to no coded Medication names no drug (as
does a concept of no code with its system and no words), and the answer says the order was not
checked (a draft) or the history read in part.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from cds_service.content.terminology import Drug, Terminology
from cds_service.content.terminology.names import says_sublingual
from cds_service.facts.model import MEDICATION_REQUESTS
from cds_service.fhir.json import as_list, as_obj, as_str, codes_of, full_urls, resource_list
from cds_service.fhir.letters import has_words
from cds_service.protocol.ids import MAX_ID


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
        """Does a raw MedicationRequest name a drug that cannot be read: by a reference that leads
        to none (no Medication found, or one without a code, and no display), or by a concept of
        no code with its system and no words (``{"coding": [{"code": "828348"}]}``)? It cannot be
        checked, and the answer says so; a draft with no drug chosen yet (the sandbox's Rx View:
        neither field) is not one."""
        if raw.get("medicationCodeableConcept") is not None:  # a string or a number: no concept either
            concept = _one(raw["medicationCodeableConcept"])
            return concept is None or names_nothing(concept)
        reference = _one(raw.get("medicationReference"))
        if reference is None or not _points_somewhere(reference):
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


def sublingual_unread(
    drug: Drug | None, raw: dict[str, Any], brands: tuple[str, ...] = ()
) -> list[tuple[dict[str, Any], str]]:
    """The words naming a raw MedicationRequest's drug that say sublingual ("SL", or one of
    ``brands``, the order's ``brands_unread``) where the drug was read as another form (a code of
    an oral product, or a strength no sublingual product comes in: ``Terminology.drug``), as
    (object, key) to read or rewrite (``drug_labels``)."""
    if drug is None or drug.sublingual:
        return []
    return [(holder, key) for holder, key in drug_labels(raw) if says_sublingual(holder[key], brands)]


def drug_labels(raw: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """The words naming a raw MedicationRequest's drug, what an EHR shows as its name, as (object,
    key): its concept's text and codings' displays, its reference's display, and those of the
    contained Medication the reference leads to."""
    concepts = [_one(raw.get("medicationCodeableConcept"))]
    labels: list[tuple[dict[str, Any], str]] = []
    if (reference := _one(raw.get("medicationReference"))) is not None:
        labels.append((reference, "display"))
        if (ref := _reference_text(reference)).startswith("#"):
            contained = as_list(raw.get("contained"))
            concepts += [_one(c.get("code")) for c in contained if _is_medication(c, ref[1:])]
    for concept in filter(None, concepts):
        labels.append((concept, "text"))
        labels += [(coding, "display") for coding in as_list(concept.get("coding")) if isinstance(coding, dict)]
    return [(holder, key) for holder, key in labels if has_words(holder.get(key))]


def names_nothing(concept: dict[str, Any]) -> bool:
    """A concept no drug can be read from: no words (text or a display) and no code with its
    system (``drug_named`` reads nothing else). The same test for a draft and for the history's orders."""
    return not has_words(concept.get("text")) and not codes_of(concept) and _display(concept) is None


def _points_somewhere(reference: dict[str, Any]) -> bool:
    """Does a reference point at anything: not the blanks a client may fill in before a drug is
    chosen ("", "#", "Medication/")?"""
    ref = _reference_text(reference)
    if ref.lstrip("#") and ref.rsplit("/", 1)[-1] != "Medication":
        return True
    return has_words(as_obj(reference.get("identifier")).get("value"))


def _reference_text(reference: dict[str, Any]) -> str:
    return (as_str(reference.get("reference")) or "").strip().rstrip("/")  # "Medication/m1/" is Medication/m1


# Orders never given: no check reads them, so neither is their Medication asked for (a failed
# search would have said the history read in part for them).
_NEVER_GIVEN = ("entered-in-error", "cancelled")
# A FHIR id's alphabet, what may go into a search's ``_id`` list unescaped; as long as any id the
# service reads (Epic's run past FHIR's 64).
_FHIR_ID = re.compile(rf"[A-Za-z0-9.-]{{1,{MAX_ID}}}")


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
            resource.get("resourceType") not in MEDICATION_REQUESTS
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
    """The drug a medication concept names, by its codes, else its text or displays (a coding's
    display counts without its system: "Cyclobenzaprine 10 MG Oral Tablet" names the drug)."""
    text = as_str(concept.get("text"))
    return terminology.drug(codes_of(concept), text if has_words(text) else _display(concept))


def _display(concept: dict[str, Any]) -> str | None:
    """The first display with words among a concept's codings, whatever their system."""
    displays = (as_obj(coding).get("display") for coding in as_list(concept.get("coding")))
    return next((d for d in displays if has_words(d)), None)


def _type_and_id(reference: str) -> str:
    """``Medication/x`` of a reference absolute or versioned (``.../Medication/x/_history/2``)."""
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:])
