"""The patient context: the history (in any FHIR version, read as R4) turned into facts.

Conditions that are active, with an onset (``conditions``); medication courses with a first and
last day (``courses``); lumbar imaging and therapy orders; the age. Every resource no rule can
use is skipped at its code before anything else is read from it.
"""

from __future__ import annotations

import logging
from calendar import monthrange
from collections.abc import Iterable
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from cds_service.clock import day_at
from cds_service.content.terminology import Terminology
from cds_service.facts.conditions import read_conditions
from cds_service.facts.courses import read_courses
from cds_service.facts.history import Condition, Course
from cds_service.facts.medications import MedicationIndex
from cds_service.facts.model import (
    BIRTH_DATE,
    BIRTH_DATE_PAST,
    MEDICATION_REQUESTS,
    NO_BIRTH_DATE,
    NO_PATIENT,
    WITHDRAWN,
    Order,
    PatientContext,
    Procedure,
)
from cds_service.fhir.coding import Code
from cds_service.fhir.json import as_list, as_obj, as_str, codes_of, reference_of, to_date
from cds_service.fhir.memo import JsonMemo
from cds_service.fhir.versions import to_r4

log = logging.getLogger(__name__)
# The oldest age ever verified (122): a birth date that makes the patient older is no age at all.
OLDEST_AGE = 122

_PROCEDURE_CODE_FIELDS = {
    "ServiceRequest": "code",
    "DeviceRequest": "codeCodeableConcept",
    "ImagingStudy": "procedureCode",
    "DiagnosticReport": "code",
}
_URGENT = {"stat", "asap", "urgent"}  # FHIR's request priorities but routine
# The day a procedure was done or is booked for, first found first (``Procedure.occurs``).
_PROCEDURE_DATES = (
    "occurrenceDateTime",
    "occurrencePeriod",
    "started",
    "effectiveDateTime",
    "effectivePeriod",
    "issued",
)


class _Procedure(NamedTuple):
    """What a procedure's concepts say, whoever's they are: ``relevant`` when a rule reads a code
    or recognises its words (physical therapy)."""

    codes: tuple[Code, ...]
    words: str
    relevant: bool


def _read_procedure(terminology: Terminology, value: Any) -> _Procedure:
    concepts = [c for c in as_list(value) if isinstance(c, dict)]
    by_concept = [(concept, codes_of(concept)) for concept in concepts]
    codes = tuple(code for _, found in by_concept for code in found)
    words = " ".join(
        (as_str(concept.get("text")) or "") + " " + " ".join(c.display or "" for c in found)
        for concept, found in by_concept
    )
    return _Procedure(codes, words.strip(), terminology.relevant(codes) or terminology.is_relevant_text(words))


_PROCEDURES = JsonMemo(_read_procedure)


def _dated(raw: dict[str, Any], name: str) -> Any:
    """A date field's value, a Period by its start: a STAT MRI booked for next week by its period
    read as undated, and stood in for the emergency MRI (a code review)."""
    value = raw.get(name)
    return as_obj(value).get("start") if name.endswith("Period") else value


def _procedures(raws: Iterable[dict[str, Any] | Order], terminology: Terminology) -> list[Procedure]:
    """The history's procedures, or the drafts' (an ``Order``: marked drafted, as a rule asks)."""
    procedure_of = _PROCEDURES.reader(terminology)
    found = []
    for given in raws:
        raw, drafted = (given.r4, True) if isinstance(given, Order) else (given, False)
        raw = to_r4(raw) or raw  # an older version's order read as R4 (ProcedureRequest: ServiceRequest)
        field_name = _PROCEDURE_CODE_FIELDS.get(str(raw.get("resourceType")))
        if field_name is None:
            continue
        codes, words, relevant = procedure_of(raw.get(field_name))
        status = (as_str(raw.get("status")) or "").lower() if relevant else ""
        if not relevant or status in WITHDRAWN:
            continue
        occurs = next((day for name in _PROCEDURE_DATES if (day := to_date(_dated(raw, name))) is not None), None)
        ordered = to_date(raw.get("authoredOn"))
        urgent = (as_str(raw.get("priority")) or "").lower() in _URGENT
        found.append(Procedure(reference_of(raw), codes, words, occurs, ordered, status, drafted, urgent))
    return found


# Back symptom duration (clinical specification §1): back pain/spasm and radicular conditions,
# and muscle relaxant courses begun in the last 90 days (refractory-spasm-imaging's prior-course
# window reaches no further: an older course alone makes no symptom duration, so no card).
_SYMPTOM_CONDITIONS = frozenset(("back-pain-spasm", "radicular"))
_SYMPTOM_COURSE_CONCEPT = "muscle-relaxant"
SYMPTOM_COURSE_DAYS = 90


def _symptom_onset(
    conditions: list[Condition], courses: list[Course], today: date
) -> tuple[date | None, date | None, int]:
    """The first day the back symptoms may have begun, the day by which they certainly had, and
    how many parts of the first's date were recorded (``Condition.onset_parts``): the earliest
    onset of an active back pain, spasm or radicular condition, or start of a muscle relaxant
    course begun in the last 90 days (a relaxant is prescribed for symptoms already there; one
    with no start date began no day known). Dates after today are not onsets."""
    symptomatic = [c for c in conditions if c.onset is not None and not c.concepts.isdisjoint(_SYMPTOM_CONDITIONS)]
    since = today - timedelta(days=SYMPTOM_COURSE_DAYS)
    begun = [
        c for c in courses if since <= c.start <= today and _SYMPTOM_COURSE_CONCEPT in c.concepts and c.start_known
    ]
    spans = [(c.onset, min(c.onset_latest or c.onset, today)) for c in symptomatic if c.onset and c.onset <= today]
    spans += [(c.start, min(c.start_latest, today)) for c in begun]
    if not spans:
        return None, None, 3
    first = min(first for first, _ in spans)
    # Of that day, the date recorded most fully.
    recorded = [c.onset_parts for c in symptomatic if c.onset == first]
    parts = max(recorded + [c.start_parts for c in begun if c.start == first])
    return first, min(last for _, last in spans), parts


def _ages(raws: list[dict[str, Any]], today: date) -> tuple[int | None, int | None, str | None]:
    """The oldest and the youngest the patient may be: a birth date of a year or a month alone
    ("1961", "1961-11") spans its first to its last day, and records of the patient that give
    different dates span them all (the first alone was read, whichever was right). The checks
    for older adults read the oldest (a patient who may be 65 is warned of), their cards say both
    ("64 or 65"); a record whose date gives no age (a placeholder) is passed over when another's
    does. Last, why the age is unknown, when it is: no Patient, no birthDate, or one that
    is no date ("04/07/1950", "1950-02-30") or not yet reached (read as it stands, a negative age
    kept the checks silent as for a young adult), or one older than anyone has lived (an EHR's
    placeholder for a date unknown). The clinician is told each: an 80-year-old's older-adult
    card went missing with no word."""
    patients = [r for r in raws if r.get("resourceType") == "Patient"]
    if not patients:
        return None, None, NO_PATIENT
    given = [g for p in patients if (g := p.get("birthDate")) is not None]
    if not given:
        return None, None, NO_BIRTH_DATE
    spans = [_birth_span(g, today) for g in given]
    days = [span for span in spans if not isinstance(span, str)]
    if not days:  # a date no record gives usably: why, the first record's reason
        return None, None, next(span for span in spans if isinstance(span, str))
    return max(_age_on(today, first) for first, _ in days), min(_age_on(today, last) for _, last in days), None


def _birth_span(given: Any, today: date) -> tuple[date, date] | str:
    """The first and last day a birth date may be, or why it gives no age (logged, no date)."""
    first = to_date(given)
    if first is None or first > today:  # its earliest day: "2026" on 2026-11-21 may be a birth this year
        said = "is no date" if first is None else "is after today"
        log.warning("patient: a birthDate that %s: the age unknown, the older-adult checks not run", said)
        return BIRTH_DATE
    last = first
    if isinstance(given, str) and len(given) == 4:
        last = first.replace(month=12, day=31)
    elif isinstance(given, str) and len(given) == 7:
        last = first.replace(day=monthrange(first.year, first.month)[1])
    if _age_on(today, last) > OLDEST_AGE:  # 1800 read "age 226"; 1900-01-01 is a common placeholder
        log.warning("patient: a birthDate over 122 years ago: the age unknown, the older-adult checks not run")
        return BIRTH_DATE_PAST
    return first, last


def _age_on(today: date, born: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def build_context(
    *,
    patient_id: str,
    under_review: list[Order],
    drafts: list[Order],
    history: dict[str, list[dict[str, Any]]],
    unavailable: frozenset[str],
    medications: MedicationIndex,
    terminology: Terminology,
    now: datetime,
    zone: tzinfo,
    history_days: int,
) -> PatientContext:
    """The context rules read. ``history`` holds each prefetch key's resources in the client's
    FHIR version; ``unavailable`` the optional keys that could not be had; ``now`` the clock's
    instant, in ``zone`` the site's day (``today``); ``history_days`` how far back the rules read
    finished courses."""
    today = day_at(now, zone)
    # Read as R4 (``to_r4``) where it is read: Conditions and MedicationRequests only once a rule
    # could use them (most of a history is not: ~1 µs an entry saved).
    # The drafts' medication orders as the history names them once read as R4 (a DSTU2
    # MedicationOrder/7 is MedicationRequest/7): not a ServiceRequest's id, which another
    # resource type may share. With each, its drug's ingredient (None: not known): an order of
    # another drug under the same id is no copy of the draft (a client numbering its drafts 1, 2,
    # … as a server numbers its orders). An order modified in place to another drug, keeping its
    # id, is read as a course beside its draft (the cautious reading: a duplicate card may ask).
    draft_ingredients = {
        f"MedicationRequest/{draft_id}": draft.drug.ingredient if draft.drug else None
        for draft in drafts
        for kind, _, draft_id in [draft.reference.partition("/")]
        if kind in MEDICATION_REQUESTS
    }
    conditions, undated_conditions = read_conditions(history.get("conditions", []), terminology, today)
    medication_history = history.get("medications", [])
    courses, undated_orders, unnamed_orders, status_unread = read_courses(
        medication_history, draft_ingredients, terminology, medications, today, zone, history_days
    )
    symptom_onset, symptom_onset_latest, symptom_onset_parts = _symptom_onset(conditions, courses, today)
    oldest_age, youngest_age, age_unknown = _ages(history.get("patient", []), today)
    return PatientContext(
        patient_id=patient_id,
        today=today,
        now=now.astimezone(zone),  # the site's clock: a time a card says is the site's
        under_review=tuple(under_review),
        drafts=tuple(drafts),
        oldest_age=oldest_age,
        youngest_age=youngest_age,
        conditions=tuple(conditions),
        courses=tuple(courses),
        procedures=(*_procedures(history.get("imaging", []), terminology), *_procedures(drafts, terminology)),
        unavailable=unavailable,
        symptom_onset=symptom_onset,
        symptom_onset_latest=symptom_onset_latest,
        symptom_onset_parts=symptom_onset_parts,
        undated_orders=tuple(undated_orders),
        unread_orders=unnamed_orders,
        undated_conditions=undated_conditions,
        status_unread_orders=tuple(status_unread),
        age_unknown=age_unknown,
    )
