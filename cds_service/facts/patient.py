"""The patient context: the history (in any FHIR version, read as R4) turned into facts.

Conditions that are active, with an onset; medication courses with a first and last day;
lumbar imaging and therapy orders; the age. A raw-code check skips every resource no rule can
use before anything else is read from it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Condition, Course, Order, PatientContext, Procedure
from cds_service.facts.orders import MedicationIndex
from cds_service.facts.sig import bounds_end_utc, course_plan
from cds_service.fhir.coding import ICD10CM, Code
from cds_service.fhir.json import as_list, as_obj, as_str, codes_of, to_date
from cds_service.fhir.versions import to_r4

_HISTORY_STATUSES = {"active", "on-hold", "completed", "stopped"}
_MEDICATION_REQUESTS = {"MedicationRequest", "MedicationOrder"}  # R4 and STU3; DSTU2
_ACTIVE_CLINICAL = {"active", "recurrence", "relapse"}
_EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}
# Without a clinical status, only these (or no verification status) leave a condition standing.
_STANDING_VERIFICATION = {"confirmed", "provisional"}
_UNKNOWN_COURSE_DAYS = 14


def _active(raw: dict[str, Any], today: date) -> bool:
    """Active per clinical specification §1: a clinical status of active, recurrence or relapse;
    without one, only an unrefuted (confirmed, provisional or unstated) condition that has not
    abated. Refuted and entered-in-error never count."""
    verification = {c.code.lower() for c in codes_of(raw.get("verificationStatus"))}  # "Refuted" too
    if verification & _EXCLUDED_VERIFICATION:
        return False
    clinical = {c.code.lower() for c in codes_of(raw.get("clinicalStatus"))}
    if clinical:
        return bool(clinical & _ACTIVE_CLINICAL)
    if verification and not verification & _STANDING_VERIFICATION:
        return False
    return not _abated(raw, today)


def _abated(raw: dict[str, Any], today: date) -> bool:
    """Has the condition abated by ``today``? An abatement without a date (an age, a range,
    words) is taken as past: it was recorded because it happened."""
    on = to_date(raw.get("abatementDateTime"))
    period = as_obj(raw.get("abatementPeriod"))
    on = on or to_date(period.get("start")) or to_date(period.get("end"))
    if on is not None:
        return on <= today
    return any(raw.get(name) is not None for name in ("abatementAge", "abatementRange", "abatementString"))


# A past-disease concept is never an active disease (clinical specification §1): "History of
# myocardial infarction", "Old myocardial infarction", "Healed ...", ICD-10-CM Z86/Z87. "Personal"
# and "family" history are history too. Other situations keep their meaning ("Recent ...").
_PAST_DISPLAY = re.compile(r"^\s*(?:(?:personal|family)\s+)?history\s+of\b|\b(?:old|past|healed)\b", re.IGNORECASE)
_PAST_ICD10CM = ("Z86", "Z87")


def is_past_disease(codes: Iterable[Code], text: str | None) -> bool:
    """Does the concept name a disease of the past rather than a current one?"""
    codes = tuple(codes)
    if any(c.key[0] == ICD10CM and c.key[1].startswith(_PAST_ICD10CM) for c in codes):
        return True
    return any(_PAST_DISPLAY.search(words) for words in (text, *(c.display for c in codes)) if words)


def _reference(raw: dict[str, Any]) -> str:
    return f"{raw['resourceType']}/{raw.get('id')}"


def _conditions(raws: list[dict[str, Any]], terminology: Terminology, today: date) -> list[Condition]:
    conditions = []
    for raw in raws:
        if raw.get("resourceType") != "Condition":
            continue
        codes = tuple(codes_of(raw.get("code")))  # ``code`` is the same in every FHIR version
        if not terminology.relevant(codes):
            continue
        r4 = to_r4(raw)  # an older version's Condition read as R4 (nested absurdly deep: a stub)
        if r4 is not None:
            raw, codes = r4, tuple(codes_of(r4.get("code")))
            if not terminology.relevant(codes):
                continue
        if not _active(raw, today):
            continue
        text = as_str(as_obj(raw.get("code")).get("text"))
        if is_past_disease(codes, text):
            continue
        onset = to_date(raw.get("onsetDateTime")) or to_date(as_obj(raw.get("onsetPeriod")).get("start"))
        recorded = to_date(raw.get("recordedDate")) if onset is None else None
        display = text or next((c.display for c in codes if c.display), codes[0].code)
        severity = tuple(codes_of(raw.get("severity")))
        conditions.append(
            Condition(_reference(raw), codes, display, onset or recorded, severity, onset_from_record=bool(recorded))
        )
    return conditions


def _course_days(
    raw: dict[str, Any],
    plan: tuple[float | None, tuple[date, date] | None, date | None],
    status: str,
    today: date,
) -> tuple[date, date, bool] | None:
    """A history order's first day, last day (inclusive) and whether the end is assumed
    (clinical specification §1): from ``authoredOn`` (else the bounds' or the validity period's
    start) for the planned duration; a bounds period's end is the last day; an unknown duration is
    14 days, assumed, except that an active order runs until today."""
    planned, span, dosing_start = plan
    validity = as_obj(as_obj(raw.get("dispenseRequest")).get("validityPeriod"))
    start = to_date(raw.get("authoredOn")) or dosing_start or to_date(validity.get("start"))
    if start is None:
        return None
    if span is not None and planned is not None:
        # The bounds period set the duration: its end is the last day. An order authored after
        # the course began (a medication history entered later) runs from the recorded start.
        return min(start, span[0]), span[1], False
    if planned is not None:
        # An order written on the 1st for dosing from the 5th ran from the 5th: its 14 days end on
        # the 18th (a washout counts from then). A dosing start before the written date (a
        # renewal, a history entered late) does not move the course back: the later reading wins.
        start = max(start, dosing_start or start)
        # Start + D days covers the start and the D - 1 days after; part of a day counts as a day.
        return start, start + timedelta(days=max(math.ceil(planned), 1) - 1), False
    if status == "active":
        return start, max(start, today), False
    return start, start + timedelta(days=_UNKNOWN_COURSE_DAYS - 1), True


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
        if raw.get("resourceType") not in _MEDICATION_REQUESTS:
            continue
        # The drug is named the same way in every FHIR version: most of a history is dropped here.
        drug = medications.identify(raw, terminology)
        if drug is None or drug.ingredient not in relevant:
            continue
        raw = to_r4(raw) or raw
        status = raw.get("status")
        if type(status) is not str or status not in _HISTORY_STATUSES:  # "Active": a capital drops no course
            status = status.lower() if isinstance(status, str) else None
            if status not in _HISTORY_STATUSES:
                continue
        reference = _reference(raw)
        if reference in exclude:
            continue
        try:
            plan = course_plan(raw, drug, terminology)
            days = _course_days(raw, plan, status, today)
            if days is None:
                continue
            start, last_day, assumed = days
            end = last_day + timedelta(days=1)
        except OverflowError:  # a course that ends after the year 9999 is nonsense, not a course
            continue
        utc = bounds_end_utc(raw) if plan[1] is not None else None  # an end the bounds period dates
        courses.append(
            Course(
                reference,
                drug,
                start,
                end,
                status,
                assumed_end=assumed,
                last_day_utc=utc if utc and utc > last_day else None,
            )
        )
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
        status = (as_str(raw.get("status")) or "").lower()
        if field_name is None or status in _PROCEDURE_EXCLUDED:
            continue
        concepts = [c for c in as_list(raw.get(field_name)) if isinstance(c, dict)]
        by_concept = [(concept, codes_of(concept)) for concept in concepts]
        codes = tuple(code for _, found in by_concept for code in found)
        words = " ".join(
            (as_str(concept.get("text")) or "") + " " + " ".join(c.display or "" for c in found)
            for concept, found in by_concept
        )
        if not terminology.relevant(codes) and not terminology.is_relevant_text(words):
            continue
        on = next((day for name in _PROCEDURE_DATES if (day := to_date(raw.get(name))) is not None), None)
        found.append(Procedure(_reference(raw), codes, words.strip(), on, status))
    return found


# Back symptom duration (clinical specification §1): back pain/spasm and radicular conditions,
# and muscle relaxant courses begun in the last 90 days.
_SYMPTOM_CONDITIONS = ("back-pain-spasm", "radicular")
_SYMPTOM_COURSE_CONCEPT = "muscle-relaxant"
_SYMPTOM_COURSE_DAYS = 90


def _symptom_onset(
    conditions: list[Condition], courses: list[Course], terminology: Terminology, today: date
) -> date | None:
    """The first day of the back symptoms: the earliest onset of an active back pain, spasm or
    radicular condition, or start of a muscle relaxant course begun in the last 90 days (a
    relaxant is prescribed for symptoms already there). Dates after today are not onsets."""
    onsets = [
        c.onset
        for c in conditions
        if c.onset is not None and any(terminology.in_concept(name, c.codes) for name in _SYMPTOM_CONDITIONS)
    ]
    since = today - timedelta(days=_SYMPTOM_COURSE_DAYS)
    onsets += [
        c.start for c in courses if since <= c.start and terminology.is_medication(_SYMPTOM_COURSE_CONCEPT, c.drug)
    ]
    onsets = [day for day in onsets if day <= today]
    return min(onsets) if onsets else None


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
    # Read as R4 (``to_r4``) where it is read: Conditions and MedicationRequests only once a rule
    # could use them (most of a history is not: ~1 µs an entry saved).
    # The drafts' medication orders as the history names them once read as R4 (a DSTU2
    # MedicationOrder/7 is MedicationRequest/7): not a ServiceRequest's id, which another
    # resource type may share.
    exclude = {
        f"MedicationRequest/{draft_id}"
        for kind, _, draft_id in (o.reference.partition("/") for o in drafts)
        if kind in _MEDICATION_REQUESTS
    }
    conditions = _conditions(history.get("conditions", []), terminology, today)
    courses = _courses(history.get("medications", []), exclude, terminology, medications, today)
    imaging = [to_r4(r) or r for r in history.get("imaging", [])]
    return PatientContext(
        hook=hook,
        patient_id=patient_id,
        today=today,
        orders=tuple(orders),
        drafts=tuple(drafts),
        age=_age(history.get("patient", []), today),
        conditions=tuple(conditions),
        courses=tuple(courses),
        procedures=tuple(_procedures([*imaging, *(o.r4 for o in drafts)], terminology)),
        unavailable=unavailable,
        symptom_onset=_symptom_onset(conditions, courses, terminology, today),
    )
