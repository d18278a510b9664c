"""The drafts under review whose drug cannot be read, named as a clinician finds them among the
others (their place in the EHR's list, what they were sent with), for the notice that says they
were not checked. The EHR's words are quoted made plain: no Markdown of theirs reaches a card."""

from __future__ import annotations

from typing import Any

from cds_service.content.markdown import named, plain
from cds_service.facts.medications import MedicationIndex
from cds_service.facts.model import Order
from cds_service.facts.orders import listed_orders
from cds_service.fhir.coding import one_line
from cds_service.fhir.json import as_list, as_obj
from cds_service.fhir.letters import has_words


def unread_drafts(bundle: Any, reviewed: list[Order], medications: MedicationIndex) -> tuple[str, ...]:
    """The drafts under review whose drug cannot be read, each named as a clinician can find it
    among the others: its place in the EHR's list (``bundle``, the ``draftOrders``: withdrawn
    drafts counted, as sent) and what it was sent with; never its id, which means nothing to a
    clinician and may be built from the patient's."""
    unread = [order for order in reviewed if order.drug is None and medications.leads_nowhere(order.r4)]
    if not unread:
        return ()
    listed = listed_orders(bundle)
    place: dict[str, int] = {}
    for n, resource in enumerate(listed, 1):
        place.setdefault(f"{resource['resourceType']}/{resource['id']}", n)
    return tuple(_draft_named(o, place.get(o.reference, 0), len(listed), medications.concept(o.r4)) for o in unread)


def _draft_named(order: Order, place: int, count: int, concept: dict[str, Any] | None) -> str:
    """ "**draft order 2 of 3** (code 828348 with no code system, “1 tab TID”)": what was sent where
    a drug belongs (a code without its system, free text in place of a coded drug, a Medication
    not found, not answered in time or of no code) and the first
    dosage's words, each as sent and made plain (no Markdown of the EHR's reaches the card)."""
    said = []
    sent = order.r4.get("medicationCodeableConcept")
    if (type(sent) is str and has_words(sent)) or type(sent) in (int, float):
        said.append(f"free text “{_plain(str(sent))}” in place of a coded drug")
    for coding in (as_obj(c) for c in as_list(as_obj(concept).get("coding"))):
        code = coding.get("code")
        if not has_words(coding.get("system")) and ((type(code) is str and has_words(code)) or type(code) is int):
            said.append(f"code {_plain(str(code))} with no code system")
    if "medicationCodeableConcept" not in order.r4 and not as_obj(concept).get("coding"):  # not found, or no code
        said.append(
            "the medication record it points to names no drug or could not be retrieved"
        )  # never its id: it may be the patient's
    dosage = as_obj(next(iter(as_list(order.r4.get("dosageInstruction"))), None)).get("text")
    if type(dosage) is str and has_words(dosage):
        said.append(f"“{_plain(dosage)}”")
    which = f"{_PLACED}{place} of {count}**" if count > 1 and place else "the draft order"
    return f"{which} ({', '.join(dict.fromkeys(said))})" if said else which


_PLACED = "**draft order "


def _plain(words: str) -> str:
    """The EHR's words, a line's worth, as plain text in a Markdown detail: a link or emphasis in
    them would show as the service's own."""
    words = one_line(words)
    return plain(words if len(words) <= 60 else words[:59] + "…")


def not_checked_summary(unchecked: tuple[str, ...], also: str = "") -> str:
    """What happened first, then why (a pharmacist's read); ``also``: what else was not read."""
    one = len(unchecked) == 1
    what = "A draft order was not checked" if one else f"{len(unchecked)} draft orders were not checked"
    why = "its drug could not be identified" if one else "their drugs could not be identified"
    if also:  # the shorter reason: the summary stays under 140 characters with 200 drafts too
        return f"{what} ({'drug' if one else 'drugs'} not identified) and {also}"
    return f"{what}: {why}"


def unchecked_said(unchecked: tuple[str, ...]) -> str:
    """Which drafts went unchecked, and why: the EHR sent nothing the service can read as a drug."""
    counted = " (drafts counted in the order the EHR sent them)" if unchecked[0].startswith(_PLACED) else ""
    one = len(unchecked) == 1
    return (
        f"Not checked{counted}: {named(unchecked, '; ')}. The {'drug' if one else 'drugs'} could not be identified "
        "from what the EHR sent (a code with its code system, or a drug name, where the drug belongs), so no check "
        f"ran on {'that order' if one else 'those orders'}."
    )
