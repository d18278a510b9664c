"""The patient context: the history (in any FHIR version, read as R4) turned into facts.

Conditions that are active, with an onset; medication courses with a first and last day;
lumbar imaging and therapy orders; the age. A raw-code check skips every resource no rule can
use before anything else is read from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Condition, Course, Order, PatientContext, Procedure
from cds_service.facts.orders import MedicationIndex
from cds_service.facts.sig import medication_order
from cds_service.fhir.json import as_list, as_obj, as_str, codes_of, first_obj, to_date
from cds_service.fhir.versions import to_r4

_HISTORY_STATUSES = {"active", "on-hold", "completed", "stopped"}
_ACTIVE_CLINICAL = {"active", "recurrence", "relapse"}
_EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}
_UNKNOWN_COURSE_DAYS = 14


def _active(raw: dict[str, Any], today: date) -> bool:
    verification = {c.code for c in codes_of(raw.get("verificationStatus"))}
    if verification & _EXCLUDED_VERIFICATION:
        return False
    clinical = {c.code for c in codes_of(raw.get("clinicalStatus"))}
    if clinical:
        return bool(clinical & _ACTIVE_CLINICAL)
    abatement = to_date(raw.get("abatementDateTime"))
    abated = (abatement is not None and abatement <= today) or any(
        raw.get(name) is not None for name in ("abatementAge", "abatementPeriod", "abatementRange", "abatementString")
    )
    return not abated


def _reference(raw: dict[str, Any]) -> str:
    return f"{raw['resourceType']}/{raw.get('id')}"


def _conditions(raws: list[dict[str, Any]], terminology: Terminology, today: date) -> list[Condition]:
    conditions = []
    for raw in raws:
        if raw.get("resourceType") != "Condition":
            continue
        codes = tuple(codes_of(raw.get("code")))
        if not any(map(terminology.is_relevant, codes)) or not _active(raw, today):
            continue
        onset = (
            to_date(raw.get("onsetDateTime"))
            or to_date(as_obj(raw.get("onsetPeriod")).get("start"))
            or to_date(raw.get("recordedDate"))
        )
        text = as_str(as_obj(raw.get("code")).get("text"))
        display = text or next((c.display for c in codes if c.display), codes[0].code)
        severity = tuple(codes_of(raw.get("severity")))
        conditions.append(Condition(_reference(raw), codes, display, onset, severity))
    return conditions


def _courses(
    raws: list[dict[str, Any]],
    exclude: set[str],
    terminology: Terminology,
    medications: MedicationIndex,
    today: date,
) -> list[Course]:
    relevant = terminology.relevant_ingredients
    courses = []
    for raw in raws:
        status = raw.get("status")
        if raw.get("resourceType") != "MedicationRequest" or not isinstance(status, str):
            continue
        if status not in _HISTORY_STATUSES:
            continue
        reference = _reference(raw)
        if reference in exclude:
            continue
        drug = medications.identify(raw, terminology)
        if drug is None or drug.ingredient not in relevant:
            continue
        order = medication_order(raw, reference, raw, drug, terminology)
        repeats = (as_obj(as_obj(d).get("timing")).get("repeat") for d in as_list(raw.get("dosageInstruction")))
        bounds = first_obj(as_obj(repeat).get("boundsPeriod") for repeat in repeats)
        validity = as_obj(as_obj(raw.get("dispenseRequest")).get("validityPeriod"))
        start = to_date(raw.get("authoredOn")) or to_date(bounds.get("start")) or to_date(validity.get("start"))
        if start is None:
            continue
        try:
            if order.planned_days is not None:
                end = start + timedelta(days=order.planned_days)
            elif status == "active":
                end = max(start, today) + timedelta(days=1)
            else:
                end = start + timedelta(days=_UNKNOWN_COURSE_DAYS)
        except OverflowError:  # a course that ends after the year 9999 is nonsense, not a course
            continue
        courses.append(Course(reference, drug, start, end, status))
    return courses


_PROCEDURE_CODE_FIELDS = {
    "ServiceRequest": "code",
    "DeviceRequest": "codeCodeableConcept",
    "ImagingStudy": "procedureCode",
    "DiagnosticReport": "code",
}
_PROCEDURE_EXCLUDED = {"entered-in-error", "revoked", "cancelled"}
_PROCEDURE_DATES = ("occurrenceDateTime", "started", "effectiveDateTime", "authoredOn", "issued")


def _procedures(raws: Iterable[dict[str, Any]], terminology: Terminology) -> list[Procedure]:
    found = []
    for raw in raws:
        field_name = _PROCEDURE_CODE_FIELDS.get(str(raw.get("resourceType")))
        status = as_str(raw.get("status")) or ""
        if field_name is None or status in _PROCEDURE_EXCLUDED:
            continue
        concepts = [c for c in as_list(raw.get(field_name)) if isinstance(c, dict)]
        codes = codes_of(concepts)
        words = " ".join(
            (as_str(concept.get("text")) or "") + " " + " ".join(c.display or "" for c in codes_of(concept))
            for concept in concepts
        )
        if not any(map(terminology.is_relevant, codes)) and not terminology.is_relevant_text(words):
            continue
        on = next((day for name in _PROCEDURE_DATES if (day := to_date(raw.get(name))) is not None), None)
        found.append(Procedure(_reference(raw), tuple(codes), words.strip(), on, status))
    return found


def _age(raws: list[dict[str, Any]], today: date) -> int | None:
    patient = next((r for r in raws if r.get("resourceType") == "Patient"), {})
    born = to_date(patient.get("birthDate"))
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def build_context(
    *,
    hook: str,
    patient_id: str,
    orders: list[Order],
    drafts: list[Order],
    history: dict[str, list[dict[str, Any]]],
    unavailable: frozenset[str],
    medications: MedicationIndex,
    terminology: Terminology,
    today: date,
) -> PatientContext:
    """The context rules read. ``history`` holds each prefetch key's resources in the client's
    FHIR version; ``unavailable`` the optional keys that could not be had."""
    resources = {key: [to_r4(r) or r for r in raws] for key, raws in history.items()}
    exclude = {f"MedicationRequest/{o.reference.partition('/')[2]}" for o in drafts}
    return PatientContext(
        hook=hook,
        patient_id=patient_id,
        today=today,
        orders=tuple(orders),
        drafts=tuple(drafts),
        age=_age(resources.get("patient", []), today),
        conditions=tuple(_conditions(resources.get("conditions", []), terminology, today)),
        courses=tuple(_courses(resources.get("medications", []), exclude, terminology, medications, today)),
        procedures=tuple(_procedures([*resources.get("imaging", []), *(o.r4 for o in drafts)], terminology)),
        unavailable=unavailable,
    )
