"""The draft orders: each validated whole (suggestions send it back), its facts read as R4.

The reference and the JSON that suggestions send back stay in the client's own FHIR version.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from cds_service.content.terminology import Drug, Terminology
from cds_service.facts.model import ORDER_TYPES, Order
from cds_service.facts.sig import medication_order, service_order
from cds_service.fhir.json import bundle_resources, codes_of
from cds_service.fhir.models import parse, without_nulls
from cds_service.fhir.versions import to_r4

log = logging.getLogger(__name__)


class MedicationIndex:
    """Medication resources a ``medicationReference`` may point at: contained, in the draft
    Bundle, prefetched or fetched. One per call, extended as resources arrive."""

    def __init__(self, resources: Iterable[dict[str, Any]] = ()) -> None:
        self._by_ref: dict[str, dict[str, Any]] = {}
        self.add(resources)

    def add(self, resources: Iterable[dict[str, Any]]) -> None:
        self._by_ref.update(
            (f"Medication/{r['id']}", r) for r in resources if r.get("resourceType") == "Medication" and r.get("id")
        )

    def identify(self, raw: dict[str, Any], terminology: Terminology) -> Drug | None:
        """The drug a raw MedicationRequest orders, from raw JSON (cheap: no validation)."""
        concept = raw.get("medicationCodeableConcept")
        reference = raw.get("medicationReference")
        if concept is None and isinstance(reference, dict):
            ref = str(reference.get("reference", ""))
            medication = None
            if ref.startswith("#"):
                medication = next(
                    (c for c in raw.get("contained") or () if isinstance(c, dict) and c.get("id") == ref[1:]), None
                )
            else:
                medication = self._by_ref.get(ref) or self._by_ref.get("/".join(ref.split("/")[-2:]))
            concept = (medication or {}).get("code") or {"text": reference.get("display")}
        if not isinstance(concept, dict):
            return None
        text = concept.get("text") if isinstance(concept.get("text"), str) else None
        return terminology.drug(codes_of(concept), text)


def draft_orders(draft_bundle: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The order resources of a ``draftOrders`` Bundle, in the client's FHIR version."""
    return [r for r in bundle_resources(draft_bundle) if r.get("resourceType") in ORDER_TYPES]


def read_orders(drafts: list[dict[str, Any]], terminology: Terminology, medications: MedicationIndex) -> list[Order]:
    """Orders from the drafts, each validated whole (suggestions send it back): facts from its R4
    form (kept on the order, converted once), while the reference and the JSON that suggestions
    send back stay in the client's own FHIR version."""
    orders = []
    for raw in drafts:
        r4 = to_r4(raw)
        parsed = parse(r4 or raw, where="draftOrders")
        if parsed is None:
            continue
        model, facts = parsed
        if not model.id:
            log.warning("skipping %s in draftOrders: a draft order needs an id", raw["resourceType"])
            continue
        reference = f"{raw['resourceType']}/{model.id}"
        resource = without_nulls(raw) if r4 is not None else facts
        if facts["resourceType"] == "MedicationRequest":
            drug = medications.identify(facts, terminology)
            orders.append(medication_order(facts, reference, resource, drug, terminology))
        else:
            orders.append(service_order(facts, reference, resource))
    return orders
