"""How a card names a patient's conditions: each with its code and onset, as precisely as it was
recorded, and how long ago that was; the codes a snooze holds to (``Finding.subject``); and which
conditions are red flags for serious spinal pathology, a vertebral fracture only while current.
Shared by the rules that read the problem list (the contraindicated-condition and anticholinergic
cards, hepatic impairment, chronic pain, the red flags, imaging, low-value back therapy), so
that none imports another rule."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from cds_service.content.terminology import Terminology
from cds_service.facts.history import Condition
from cds_service.fhir.coding import ICD10CM
from cds_service.rules.common import date_shown, span_said

# The red-flag concepts (cards/terminology/concepts/back.toml), most urgent first
# (``back-pain-red-flag``; ``low-value-back-therapy`` is silent with one).
RED_FLAGS = ("cauda-equina", "spinal-infection", "vertebral-fracture", "spinal-malignancy")
# ICD-10-CM 7th characters of an initial encounter: the fracture is being treated now.
_INITIAL_ENCOUNTER = frozenset("AB")
# The concept whose onset ``condition_facts`` weighs against a recovery window: a myocardial
# infarction counts in its acute recovery phase only (``cyclobenzaprine-contraindicated-condition``).
RECENT_MI = "myocardial-infarction"
# A condition's own display names it in the summary when short enough; else its set's title.
_SUMMARY_NAME_LIMIT = 60


def condition_label(condition: Condition, terminology: Terminology, concept: str) -> str:
    code = terminology.matching(concept, condition.codes) or condition.codes[0]
    return f"{condition.display} ({code.code})"


def condition_subject(found: Iterable[tuple[str, Condition]], terminology: Terminology) -> frozenset[str]:
    """The codes (``system|code``, as compared) of each (concept, condition) a card names, the
    one that put it in the concept first (``Finding.subject``): an identity a new condition
    does not share, where its display or resource id may change or be the patient's own."""
    subject = set()
    for concept, condition in found:
        system, code = (terminology.matching(concept, condition.codes) or condition.codes[0]).key
        subject.add(f"{system}|{code}")
    return frozenset(subject)


def since(condition: Condition) -> str:
    return f" since {onset_shown(condition)}" if condition.onset else ""


def onset_shown(condition: Condition) -> str:
    """The onset as precisely as it was recorded: "2026-08" for a month, not a day never recorded."""
    return date_shown(condition.onset, condition.onset_parts) if condition.onset else ""


def days_since_onset(condition: Condition, today: date, threshold_days: int = 0) -> str:
    """How long before today the onset was, for a card: "12 days"; a partial one the span of the
    days it covers up to today ("82–112 days"); a long one as ``span_said`` rounds it."""
    first = condition.onset
    if first is None:
        return ""
    last = min(condition.onset_latest or first, today)
    if last <= first or first > today:
        days = (today - first).days
        # A date after today (a slip of the record, or its clock) says so rather than "-4 days".
        return "a date after today" if days < 0 else span_said(days, days, threshold_days)
    return span_said((today - last).days, (today - first).days, threshold_days)


def condition_facts(
    found: list[tuple[Condition, str]], today: date, terminology: Terminology, recent_mi_days: int = 0
) -> dict[str, str]:
    """Each condition with its code and date (the detail), the first one named (the summary)."""
    lines = [
        f"**{condition_label(c, terminology, concept)}**{_when(c, concept, today, recent_mi_days)}"
        for c, concept in found
    ]
    first, concept = found[0]
    title = terminology.code_concepts[concept].title
    name = _in_sentence(first.display) if len(first.display) <= _SUMMARY_NAME_LIMIT else title.lower()
    more = f" and {len(found) - 1} more" if len(found) > 1 else ""
    return {"conditions": "; ".join(lines), "condition": f"{name}{more}"}


def _in_sentence(display: str) -> str:
    """A display read mid-sentence: "Atrioventricular block" lower-cased, "AV block" kept."""
    return display[:1].lower() + display[1:] if display[1:2].islower() else display


def _when(condition: Condition, concept: str, today: date, recent_mi_days: int) -> str:
    """ "since 2025-02-10"; an MI also says how long ago, and when the date is only the record's."""
    if concept != RECENT_MI or condition.onset is None:
        return since(condition)
    ago = days_since_onset(condition, today, recent_mi_days)  # weighed against it: exact near it
    ago = ago if condition.onset > today else f"{ago} ago"
    window = f"{ago}; the first {recent_mi_days} days count as the acute recovery phase"
    if condition.onset_from_record:
        return f" recorded {onset_shown(condition)} ({window}; no onset date given)"
    return f" since {onset_shown(condition)} ({window})"


def current_fracture(condition: Condition, terminology: Terminology, today: date, days: int) -> bool:
    """Is this a current vertebral fracture? An ICD-10-CM 7th character A or B (initial
    encounter) says so; another 7th character (subsequent encounter, sequela) or none, only an
    onset in the last ``days`` (clinical specification §4)."""
    code = terminology.matching("vertebral-fracture", condition.codes)
    if code is None:
        return False
    system, key = code.key
    if system == ICD10CM and len(key) == 7 and key[6] in _INITIAL_ENCOUNTER:
        return True
    return condition.onset_since(today - timedelta(days=days))
