"""FHIR actions for suggestions: whole resources, built from the client's own draft.

An ``update`` carries the complete draft with the same id, changed only where the card says
(CDS Hooks 2.0 §Action), in the FHIR version the client sent it (``fhir_versions.dialect``);
the renderer adds each action's ``description`` from the card text.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from cds_service.content.terminology import Drug
from cds_service.facts.model import Order
from cds_service.facts.sig import COUNT_UNITS
from cds_service.fhir.coding import CPT, RXNORM, Code
from cds_service.fhir.dialect import dialect

UCUM = "http://unitsofmeasure.org"


def days(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "days", "system": UCUM, "code": "d"}


def delete(order: Order) -> dict[str, Any]:
    return {"type": "delete", "resourceId": order.reference}


def update(resource: dict[str, Any]) -> dict[str, Any]:
    return {"type": "update", "resource": resource}


def create(resource: dict[str, Any]) -> dict[str, Any]:
    return {"type": "create", "resource": resource}


def with_duration(order: Order, limit_days: int) -> dict[str, Any]:
    """The draft limited to ``limit_days``: bounds, supply, no refills and a matching quantity."""
    resource = copy.deepcopy(order.resource)
    fields = dialect(resource)
    for dosage in resource.setdefault("dosageInstruction", [{}]):
        repeat = dosage.setdefault("timing", {}).setdefault("repeat", {})
        for key in ("boundsPeriod", "boundsRange", "boundsDuration", "boundsQuantity"):
            repeat.pop(key, None)
        repeat[fields.bounds_duration] = days(limit_days)
    dispense = resource.setdefault("dispenseRequest", {})
    dispense["expectedSupplyDuration"] = days(limit_days)
    fields.no_repeats(dispense)
    if order.units_per_day:
        dispense["quantity"] = {"value": math.ceil(order.units_per_day * limit_days), **_unit_of(order)}
    return resource


def _unit_of(order: Order) -> dict[str, str]:
    """Count units for a dispense quantity: the draft's own dose unit when it counts units."""
    for dosage in order.resource.get("dosageInstruction") or ():
        for quantity in dialect(order.resource).doses(dosage):
            quantity = quantity or {}
            unit = str(quantity.get("code") or quantity.get("unit") or "")
            if unit.strip("{}").lower() in COUNT_UNITS:
                return {k: quantity[k] for k in ("unit", "system", "code") if k in quantity}
    form = order.drug.dose_form if order.drug and order.drug.dose_form else "tablet"
    return {"unit": form, "system": UCUM, "code": f"{{{form}}}"}


def with_product(order: Order, product: Drug, *, max_per_day: float) -> dict[str, Any]:
    """The draft switched to one unit of ``product``, no more often than ``max_per_day``."""
    resource = copy.deepcopy(order.resource)
    resource.pop("medicationReference", None)
    resource["medicationCodeableConcept"] = {
        "coding": [{"system": RXNORM, "code": product.rxcui, "display": product.name}],
        "text": product.name,
    }
    form = product.dose_form or "tablet"
    fields = dialect(resource)
    for dosage in resource.get("dosageInstruction") or ():
        fields.set_dose(dosage, {"value": 1, "unit": form, "system": UCUM, "code": f"{{{form}}}"})
        if order.per_day is not None and order.per_day > max_per_day:
            timing = dosage.setdefault("timing", {})
            timing.pop("code", None)
            repeat = timing.setdefault("repeat", {})
            for key in ("frequencyMax", "periodMax", "timeOfDay", "when"):
                repeat.pop(key, None)
            repeat.pop("periodUnit", None)
            repeat.pop("periodUnits", None)
            repeat.update({"frequency": math.floor(max_per_day), "period": 1, fields.period_unit: "d"})
    return resource


def service_request(*, patient_id: str, code: Code, reason: tuple[str, str] | None) -> dict[str, Any]:
    """A draft order for ``code`` (a CPT procedure), with the condition that prompted it."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": CPT, "code": code.code, "display": code.display}], "text": code.display},
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if reason is not None:
        resource["reasonReference"] = [{"reference": reason[0], "display": reason[1]}]
    return resource
