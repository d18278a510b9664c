"""refractory-spasm-imaging: back spasm that has lasted six weeks needs a diagnosis, not another relaxant.

When a muscle relaxant is ordered, the back symptoms have lasted at least 42 days, and (a) a
prior muscle relaxant course started 14–90 days ago, or (b) back pain or spasm began at least
42 days ago, or (c) sciatica, lumbar radiculopathy or a lumbar disc disorder began at least 42
days ago, and no lumbar MRI or CT is on record in the last 365 days, then name the
differential (nerve impingement, disc pathology, fibromyalgia, myofascial pain). Evidence:
[FAIL] "refractory pain suggests nerve impingement and needs a diagnostic workup";
[ACP-IMG] "MRI for persistent radiculopathy only in candidates for surgery or epidural
steroid injection"; [CW] "no advanced imaging in the first six weeks without red flags".

Only persistent radicular symptoms (c) make a warning with an MRI to order, and that MRI is
not recommended by default: imaging helps only a patient who would have surgery or an
injection. Otherwise the card is information. A red-flag card for the patient replaces this one
(``back-pain-red-flag`` subsumes it).
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import Field, model_validator

from cds_service.content.terminology import Terminology
from cds_service.facts.history import Condition
from cds_service.facts.model import Order, PatientContext
from cds_service.facts.patient import SYMPTOM_COURSE_DAYS
from cds_service.rules import Finding, Proposal, Rule, RuleConfig
from cds_service.rules.actions import MRI_LUMBAR, create, service_request
from cds_service.rules.common import date_shown, is_muscle_relaxant, span_said
from cds_service.rules.condition_said import days_since_onset, onset_shown

RULE_ID = "refractory-spasm-imaging"
# Symptoms for half a year or more are said in months or years in the summary, not weeks.
WEEKS_SAID_DAYS = 183


class Config(RuleConfig):
    # Six weeks: the symptom duration, and the age of the back pain or radicular condition,
    # before the card speaks (earlier imaging is low-value without red flags).
    min_symptom_days: int = Field(default=42, ge=1, le=3650)
    prior_course_min_days: int = Field(default=14, ge=0, le=3650)
    # At most the window of courses the symptom duration counts (§1): a course begun earlier alone
    # makes no duration, and the card stayed silent for it (120 was accepted: an informaticist's audit).
    prior_course_max_days: int = Field(default=90, ge=1, le=SYMPTOM_COURSE_DAYS)
    imaging_lookback_days: int = Field(default=365, ge=1, le=3650)

    @model_validator(mode="after")
    def _a_window(self) -> Config:
        """A prior course's window that ends before it starts would keep the card silent for good."""
        if self.prior_course_min_days > self.prior_course_max_days:
            raise ValueError("prior_course_min_days is more than prior_course_max_days")
        return self

    def history_days(self) -> int:
        return self.prior_course_max_days


def _persistent(context: PatientContext, concept: str, days: int) -> Condition | None:
    """The oldest active condition of ``concept`` that certainly began at least ``days`` ago: a
    partial onset by its last day (a year alone recorded may be this week)."""
    before = context.today - timedelta(days=days)
    found = [
        c
        for c in context.conditions
        if concept in c.concepts and c.onset is not None and (c.onset_latest or c.onset) <= before
    ]
    return min(found, key=lambda c: c.onset or context.today, default=None)


def _condition_line(condition: Condition, terminology: Terminology, concept: str, today: date) -> str:
    code = terminology.matching(concept, condition.codes) or condition.codes[0]
    since = f"since {onset_shown(condition)}, {days_since_onset(condition, today)}"
    return f"- **{condition.display}** ({code.code}) {since}."


def _triggers(context: PatientContext, terminology: Terminology, limits: Config) -> tuple[list[str], Condition | None]:
    """What makes the spasm refractory, one line each, and the radicular condition if any."""
    today = context.today
    lines = []
    earliest = today - timedelta(days=limits.prior_course_max_days)
    latest = today - timedelta(days=limits.prior_course_min_days)
    # Begun in the window, and certainly long enough ago: a month alone recorded, by its last day.
    relaxants = [c for c in context.courses if "muscle-relaxant" in c.concepts]
    prior = [c for c in relaxants if earliest <= c.start and c.start_latest <= latest and c.start_known]
    if prior:
        course = max(prior, key=lambda c: c.start)  # the latest begun (the first of a tie, as recorded)
        started = date_shown(course.start, course.start_parts)
        days = (today - course.start).days
        ago = f"{span_said(days, days)} ago" if course.start_parts == 3 else "the day not recorded"
        lines.append(f"- A prior {course.drug.ingredient} course started {started}, {ago}.")
    radicular = _persistent(context, "radicular", limits.min_symptom_days)
    back_pain = _persistent(context, "back-pain-spasm", limits.min_symptom_days)
    for concept, condition in (("radicular", radicular), ("back-pain-spasm", back_pain)):
        if condition is not None:
            lines.append(_condition_line(condition, terminology, concept, today))
    return lines, radicular


def evaluate(context: PatientContext, order: Order, terminology: Terminology, limits: Config) -> Finding | None:
    if not is_muscle_relaxant(order, terminology):
        return None
    days, certain = context.symptom_days, context.certain_symptom_days
    if days is None or certain is None or context.symptom_onset is None or certain < limits.min_symptom_days:
        return None
    triggers, radicular = _triggers(context, terminology, limits)
    if not triggers:
        return None

    recent = context.today - timedelta(days=limits.imaging_lookback_days)
    imaging = [p for p in context.procedures if terminology.in_concept("lumbar-imaging", p.codes)]
    # Done in the window, or booked for a later day: unlike the red flag's emergency MRI, a booked
    # routine one is the workup this card asks for, and the MRI it offers would repeat it.
    if any(study.on is None or study.on >= recent for study in imaging):
        return None
    if "imaging" in context.unavailable:
        status = "The imaging history could not be checked: confirm there has been no recent lumbar MRI or CT."
    else:
        # Only what the codes it reads recognise (lumbar-imaging's CPT codes): a study coded
        # otherwise (LOINC, words alone) is not seen, so the card says no more than that.
        status = f"No lumbar MRI or CT from the last {limits.imaging_lookback_days} days was found in the record."

    lasted, weeks = span_said(certain, days), _span(certain // 7, days // 7)
    facts = {
        # The summary's: weeks, as the specification words it, until weeks no longer read at a
        # glance ("for 413 weeks" was an 8-year back pain); then months or years, as the detail.
        "span": f"{weeks} weeks" if days < WEEKS_SAID_DAYS else lasted,
        "weeks": weeks,  # kept for a site's reworded summary
        "lasted": lasted,
        "onset": date_shown(context.symptom_onset, context.symptom_onset_parts),
        "triggers": "\n".join(triggers),
        "imaging_status": status,
    }
    if radicular is None:
        return Finding(RULE_ID, "refractory", order, facts)
    mri = service_request(
        patient_id=context.patient_id,
        code=MRI_LUMBAR,
        reason=(radicular.reference, radicular.display),
        order=order,
    )
    return Finding(RULE_ID, "radicular", order, facts, (Proposal(actions=(create(mri),)),))


def _span(least: int, most: int) -> str:
    """A duration a card may say: "47–99" where a partial onset leaves it that wide."""
    return str(most) if least == most else f"{least}–{most}"


FACTS = ("imaging_status", "lasted", "onset", "span", "triggers", "weeks")

RULE = Rule(
    id=RULE_ID,
    variants=dict.fromkeys(("radicular", "refractory"), FACTS),
    applies_to=is_muscle_relaxant,
    evaluate=evaluate,
    config=Config,
    once_per_call=True,
)
