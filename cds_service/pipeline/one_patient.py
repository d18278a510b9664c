"""Every resource a call reads is the context's patient's.

A Patient record, a draft order or a history entry that names another patient is an EHR's
mix-up (a wrong prefetch, a stale draft), and read into this patient's facts it would give the
clinician a wrong card: an age, a problem or a course that is not theirs. It is refused with the
field named, 400 when the client sent it, 412 when the FHIR server answered with it. Neither
the answer nor the log names either patient's id. A reference that names no one we can read
(a display, a contained or ``urn:uuid:`` resource) is not a mismatch."""

from __future__ import annotations

from typing import Any

from cds_service.errors import DataUnavailable, InvalidRequest
from cds_service.pipeline.prefetch import PatientData


def check_drafts(drafts: list[dict[str, Any]], patient_id: str) -> None:
    if any(_another(draft, patient_id, f"Patient/{patient_id}") for draft in drafts):
        raise InvalidRequest(
            "context.draftOrders: a draft order names another patient than context.patientId",
            fields=["context.draftOrders"],
        )


def check_patient_data(data: PatientData, sent: dict[str, Any], patient_id: str) -> None:
    own = f"Patient/{patient_id}"
    for key, resources in data.resources.items():
        if not any(_another(resource, patient_id, own) for resource in resources):
            continue
        field = f"prefetch.{key}"
        value = sent.get(key)
        if isinstance(value, dict) and value.get("resourceType") != "OperationOutcome":
            raise InvalidRequest(f"{field}: holds a resource of another patient than context.patientId", fields=[field])
        raise DataUnavailable(
            f"{field}: the FHIR server answered with a resource of another patient than context.patientId",
            fields=[field],
        )


def _another(resource: dict[str, Any], patient_id: str, own: str) -> bool:
    """Does ``resource`` name another patient: a Patient of another id, or a ``subject``
    (``patient`` before R4) referring to another Patient, relative, absolute or versioned?
    The common case, ``Patient/<id>`` as is, costs one comparison (a history has hundreds)."""
    if resource.get("resourceType") == "Patient":
        resource_id = resource.get("id")
        return type(resource_id) is str and resource_id != patient_id
    holder = resource.get("subject") or resource.get("patient")
    reference = holder.get("reference") if type(holder) is dict else None
    if type(reference) is not str or reference == own:
        return False
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return len(parts) >= 2 and parts[-2] == "Patient" and parts[-1] != patient_id
