"""refractory-spasm-imaging: consider a lumbar MRI for spasm that keeps coming back.

When a muscle relaxant is ordered and (a) a prior muscle relaxant course started 14–90 days
ago, or (b) back pain or spasm has been active for more than 28 days, or (c) sciatica,
lumbar radiculopathy or a lumbar disc disorder is active, and there has been no lumbar MRI
or CT in the last 90 days, then suggest ordering an MRI. Evidence: [FAIL] "refractory pain
suggests nerve impingement and needs a diagnostic workup, often MRI; fibromyalgia and
myofascial pain mimic spasm".
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Condition, Order, PatientContext
from cds_service.fhir.coding import CPT, Code
from cds_service.rules import Finding, Proposal, Rule, RuleConfig
from cds_service.rules.actions import create, service_request
from cds_service.rules.common import is_muscle_relaxant

RULE_ID = "refractory-spasm-imaging"
MRI_LUMBAR = Code(CPT, "72148", "MRI lumbar spine without contrast")


class Config(RuleConfig):
    prior_course_min_days: int = Field(default=14, ge=0)
    prior_course_max_days: int = Field(default=90, ge=1)
    chronic_onset_days: int = Field(default=28, ge=1)
    imaging_lookback_days: int = Field(default=90, ge=1)


def evaluate(context: PatientContext, order: Order, terminology: Terminology, limits: Config) -> Finding | None:
    if not is_muscle_relaxant(order, terminology):
        return None
    today = context.today
    triggers: list[str] = []
    reason: Condition | None = None

    earliest = today - timedelta(days=limits.prior_course_max_days)
    latest = today - timedelta(days=limits.prior_course_min_days)
    for course in sorted(context.courses, key=lambda c: c.start, reverse=True):
        if terminology.is_medication("muscle-relaxant", course.drug) and earliest <= course.start <= latest:
            triggers.append(
                f"A prior {course.drug.ingredient} course started {course.start.isoformat()}, "
                f"{(today - course.start).days} days ago."
            )
            break
    for condition in context.conditions:
        if terminology.in_concept("radicular", condition.codes):
            triggers.append(f"**{condition.display}** is on the problem list.")
            reason = condition
            break
    chronic_before = today - timedelta(days=limits.chronic_onset_days)
    for condition in context.conditions:
        if (
            terminology.in_concept("back-pain-spasm", condition.codes)
            and condition.onset is not None
            and condition.onset < chronic_before
        ):
            triggers.append(
                f"**{condition.display}** since {condition.onset.isoformat()}, more than "
                f"{limits.chronic_onset_days} days."
            )
            reason = reason or condition
            break
    if not triggers:
        return None

    recent = today - timedelta(days=limits.imaging_lookback_days)
    imaging = [p for p in context.procedures if terminology.in_concept("lumbar-imaging", p.codes)]
    if any(study.on is None or study.on >= recent for study in imaging):
        return None
    if "imaging" in context.unavailable:
        status = "The imaging history could not be checked: confirm there has been no recent lumbar MRI or CT."
    else:
        status = f"No lumbar MRI or CT is on record in the last {limits.imaging_lookback_days} days."

    mri = service_request(
        patient_id=context.patient_id,
        code=MRI_LUMBAR,
        reason=(reason.reference, reason.display) if reason else None,
    )
    facts = {"triggers": "\n".join(f"- {t}" for t in triggers), "imaging_status": status}
    return Finding(RULE_ID, "refractory", order, facts, (Proposal(actions=(create(mri),), recommended=True),))


RULE = Rule(
    id=RULE_ID,
    variants=("refractory",),
    applies_to=is_muscle_relaxant,
    evaluate=evaluate,
    config=Config,
    once_per_call=True,
)
