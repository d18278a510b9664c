"""A history's Conditions as facts: those active, not of the past, that a rule reads.

A Condition's ``code`` is read once per process for every patient who has it (``JsonMemo``):
whether any rule reads it, and whether it names a disease of the past; only a Condition some
rule reads has its status and dates read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import date
from typing import Any, NamedTuple

from cds_service.content.terminology import Terminology
from cds_service.facts.history import Condition
from cds_service.fhir.coding import ICD10CM, Code, on_one_line, one_line
from cds_service.fhir.json import as_list, as_obj, as_str, codes_of, date_parts, reference_of, to_date, to_end_date
from cds_service.fhir.memo import JsonMemo
from cds_service.fhir.versions import to_r4

log = logging.getLogger(__name__)

_ACTIVE_CLINICAL = {"active", "recurrence", "relapse"}
# Every clinical status R4 and the older versions know (a DSTU2 or STU3 code is made R4's
# CodeableConcept by ``to_r4``); and every verification status ("unknown": DSTU2 and STU3).
_CLINICAL = {*_ACTIVE_CLINICAL, "inactive", "remission", "resolved"}
_VERIFICATION = {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error", "unknown"}
_EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}
# Without a clinical status, only these (or no verification status) leave a condition standing.
_STANDING_VERIFICATION = {"confirmed", "provisional"}


class _Standing(NamedTuple):
    """What a condition's statuses say of it: ``stands`` True or False, or None (no clinical
    status: it stands unless it has abated); ``unread`` when a status was given that names no
    code of its value set."""

    stands: bool | None
    unread: bool


def _standing(_: Terminology, statuses: tuple[Any, Any]) -> _Standing:
    """What a condition's statuses say of it (clinical specification §1): active with a clinical
    status of active, recurrence or relapse, not with another; without one, None (it stands
    unless it has abated) for an unrefuted (confirmed, provisional or unstated) condition.
    Refuted and entered-in-error never count.

    A status given that names no code of its value set ("actve", a SNOMED code, words alone) is
    read as not given, and said (``unread``): read as a status that is not active, a red flag's
    card went missing with no word. Taken as current, the card a condition brings is shown, and
    the notice tells the clinician its status could not be read: a card to dismiss is safer than
    a red flag or a contraindication missing unseen. An abatement recorded still ends it (R4: a
    condition abated is not active; "resolvd" is the likelier typo). Not said where a status read
    settles it (refuted; a clinical status not active, whatever the verification)."""
    verification = _status_codes(statuses[0])
    if verification & _EXCLUDED_VERIFICATION:
        return _Standing(False, False)
    clinical, known = _status_codes(statuses[1]) & _CLINICAL, verification & _VERIFICATION
    verification_unread = statuses[0] is not None and not known
    if clinical:
        stands = bool(clinical & _ACTIVE_CLINICAL)
        return _Standing(stands, verification_unread and stands)
    if statuses[1] is not None:  # given, and unread: it may have said active, whatever the verification
        return _Standing(None, True)
    if known and not known & _STANDING_VERIFICATION:
        return _Standing(False, False)
    return _Standing(None, verification_unread)


def _status_codes(concept: Any) -> set[str]:
    """A status's codes, in lower case ("Refuted" too). Its codes come from one code system, so
    a coding that leaves the system out says the same: read as no status, a resolved hepatitis
    was active and its card shown."""
    codings = (coding for item in as_list(concept) for coding in as_list(as_obj(item).get("coding")))
    return {c["code"].lower() for c in codings if type(c) is dict and type(c.get("code")) is str}


# A problem list says "active, confirmed" over and over: each pair of statuses read once per process.
_STATUSES = JsonMemo(_standing)


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


class _Concept(NamedTuple):
    """What a Condition's ``code`` says, whoever's it is: ``codes`` empty when no rule reads them
    or they name a disease of the past (the Condition is then not a fact)."""

    codes: tuple[Code, ...]
    display: str
    concepts: frozenset[str]


def _read_concept(terminology: Terminology, concept: Any) -> _Concept:
    codes = on_one_line(codes_of(concept))  # ``code`` is the same in every FHIR version
    text = as_str(as_obj(concept).get("text"))
    if not terminology.relevant(codes) or is_past_disease(codes, text):
        return _Concept((), "", frozenset())
    display = text or next((c.display for c in codes if c.display), codes[0].code)
    return _Concept(codes, one_line(display) or codes[0].code, terminology.concepts_of(codes))


_CONCEPTS = JsonMemo(_read_concept)


def read_conditions(raws: list[dict[str, Any]], terminology: Terminology, today: date) -> tuple[list[Condition], int]:
    """The conditions, and how many of them gave an onset that is no date ("10/15/2026") with no
    recordedDate to stand in (clinical specification §1): a refractory back pain's 7 weeks went
    unseen with no word, and so it is said."""
    concept_of, standing_of = _CONCEPTS.reader(terminology), _STATUSES.reader(terminology)
    conditions, undated = [], 0
    for raw in raws:
        codes, display, concepts = concept_of(raw.get("code"))  # most of a history stops here
        if not codes or raw.get("resourceType") != "Condition":
            continue
        r4 = to_r4(raw)  # an older version's Condition read as R4 (nested absurdly deep: a stub)
        if r4 is not None:
            raw = r4
            codes, display, concepts = concept_of(r4.get("code"))
            if not codes:
                continue
        standing, unread = standing_of((raw.get("verificationStatus"), raw.get("clinicalStatus")))
        if standing is False or (standing is None and _abated(raw, today)):
            continue
        onset, latest, from_record, parts = _onset(raw, today)
        if onset is None and (raw.get("onsetDateTime") is not None or _period_start(raw) is not None):
            undated += 1
        severity = raw.get("severity")
        conditions.append(
            Condition(
                reference_of(raw),
                codes,
                concepts,
                display,
                onset,
                on_one_line(codes_of(severity)) if severity is not None else (),
                from_record,
                latest,
                parts,
                unread,
            )
        )
    if undated:
        log.warning("conditions: %d with an onset that is no date, and no recordedDate for it", undated)
    return conditions, undated


def _period_start(raw: dict[str, Any]) -> Any:
    return as_obj(raw.get("onsetPeriod")).get("start")


def _onset(raw: dict[str, Any], today: date) -> tuple[date | None, date | None, bool, int]:
    """The first and the last day the onset may be on, whether the recordedDate stands in for it,
    and how many parts of a date were recorded (``Condition.onset_parts``). A partial date covers
    its days up to the day the condition was recorded (or its onset period ended, or today)."""
    period = as_obj(raw.get("onsetPeriod"))
    written, from_record = raw.get("onsetDateTime"), False
    first = to_date(written)
    if first is None:
        written = period.get("start")
        first = to_date(written)
    if first is None:
        written, from_record = raw.get("recordedDate"), True
        first = to_date(written)
    parts = date_parts(written)
    if first is None or parts == 3:
        return first, first, from_record, 3
    caps = (to_end_date(written), today, to_end_date(raw.get("recordedDate")), to_end_date(period.get("end")))
    return first, max(min(c for c in caps if c is not None), first), from_record, parts
