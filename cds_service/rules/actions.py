"""FHIR actions for suggestions: whole resources, built from the client's own draft.

An ``update`` carries the complete draft with the same id, changed only where the card says
(CDS Hooks 2.0 §Action), in the FHIR version the client sent it (``fhir.dialect``); the
renderer adds each action's ``description`` from the card text. Every update is safe to
accept (clinical specification §2): ``rules.safe_update`` keeps its dispensed quantity at or under
the draft's and drops the contained resources nothing references any more (FHIR dom-3). The two
changes a card makes to a draft are ``rules.duration_update`` (fewer days) and
``rules.product_swap`` (another product).
"""

from __future__ import annotations

from typing import Any

from cds_service.facts.model import Order
from cds_service.fhir.coding import CPT, Code
from cds_service.fhir.dialect import dialect

UCUM = "http://unitsofmeasure.org"
# The lumbar MRI a card offers to order (``service_request``): the red-flag card's STAT one, the
# refractory-spasm card's for persistent radicular symptoms.
MRI_LUMBAR = Code(CPT, "72148", "MRI lumbar spine without contrast")


def days(value: float) -> dict[str, Any]:
    """A UCUM duration in days, a whole number written as one (10.5 for a fill of half of 21)."""
    whole = float(value).is_integer()
    return {"value": int(value) if whole else round(value, 2), "unit": "days", "system": UCUM, "code": "d"}


def delete(order: Order) -> dict[str, Any]:
    return {"type": "delete", "resourceId": order.reference}


def update(resource: dict[str, Any]) -> dict[str, Any]:
    return {"type": "update", "resource": resource}


def create(resource: dict[str, Any]) -> dict[str, Any]:
    return {"type": "create", "resource": resource}


def writable_repeat(dosage: dict[str, Any]) -> dict[str, Any]:
    """The dosage's ``timing.repeat`` to change (``timing`` made writable too)."""
    return writable(writable(dosage, "timing"), "repeat")


def writable(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` to change, a new object where the client sent something else there (a
    string, a list): the edit is built whatever the draft holds, as tolerantly as the facts read
    it, and such a draft is then not offered (``pipeline.cards``: the R4 model rejects it)."""
    if not isinstance(parent.get(key), dict):
        parent[key] = {}
    child: dict[str, Any] = parent[key]
    return child


def service_request(
    *, patient_id: str, code: Code, reason: tuple[str, str] | None, order: Order | None = None, stat: bool = False
) -> dict[str, Any]:
    """A draft imaging order for ``code`` (a CPT procedure) with the condition that prompted it
    (``reason``: its reference and display), in the FHIR version of ``order``, the client's
    draft under review (pass it: without it the order is R4): R4 a ServiceRequest, STU3 a
    ProcedureRequest, DSTU2 a DiagnosticOrder (DSTU2's order for imaging, whose reason goes in
    ``supportingInformation``). ``patient_id`` is the hook context's, without "Patient/".
    ``stat``: the card says now, and the order must say so too, or it joins the routine list
    (``priority`` stat: the same code in the three versions)."""
    kind = dialect(order.resource if order is not None else {}).service_request
    coded = {"coding": [{"system": CPT, "code": code.code, "display": code.display}], "text": code.display}
    resource: dict[str, Any] = {"resourceType": kind, "status": "draft"}
    if kind == "DiagnosticOrder":
        resource["item"] = [{"code": coded}]
    else:
        resource.update({"intent": "order", "code": coded})
    resource["subject"] = {"reference": f"Patient/{patient_id}"}
    if stat:
        resource["priority"] = "stat"
    if reason is not None:
        cited = [{"reference": reason[0], "display": reason[1]}]
        resource["supportingInformation" if kind == "DiagnosticOrder" else "reasonReference"] = cited
    return resource
