"""nonpharmacologic-first-line: pair a relaxant with heat and exercise.

At order-select, when a muscle relaxant is chosen for back pain or spasm (on the problem list
or as the order's reason) and no physical therapy is ordered (or, the patient's service orders
not available, whether it is cannot be told: the card says so), then remind that heat with
exercise beats exercise alone and that massage helps in the short term; once the symptoms have
lasted 28 days, also that multidisciplinary rehabilitation beats physical therapy alone.
Evidence: [ACP].

A reminder at the moment of choosing, not at signing, and about the patient: one per call. The
red-flag and chronic-pain cards replace it (they carry their own advice).
"""

from __future__ import annotations

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import is_muscle_relaxant, span_said

RULE_ID = "nonpharmacologic-first-line"
_PENDING = {"active", "draft", "on-hold"}
_NONE_FOUND = "No current physical therapy order was found for this patient."
_UNCHECKED = "Whether physical therapy is ordered could not be checked: the service orders were not available."


class Config(RuleConfig):
    # Symptoms this long add the multidisciplinary rehabilitation advice.
    rehabilitation_symptom_days: int = Field(default=28, ge=1, le=3650)


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_muscle_relaxant(order, terminology):
        return None
    back_pain = terminology.in_concept("back-pain-spasm", order.reason.codes) or any(
        "back-pain-spasm" in c.concepts for c in context.conditions
    )
    if not back_pain:
        return None
    therapy = any(
        p.status in _PENDING and terminology.in_concept("physical-therapy", p.codes, p.text) for p in context.procedures
    )
    if therapy:
        return None
    # Without the patient's service orders, whether therapy is ordered is unknown: said, not taken
    # as none (the card had gone quiet, with no word on the screen: QA round 2).
    facts = {"therapy": _UNCHECKED if "imaging" in context.unavailable else _NONE_FOUND}
    days = context.symptom_days
    if days is not None and days >= config.rehabilitation_symptom_days:
        return Finding(RULE_ID, "heat-exercise-and-rehabilitation", order, {**facts, "lasted": span_said(days, days)})
    return Finding(RULE_ID, "heat-and-exercise", order, facts)


RULE = Rule(
    id=RULE_ID,
    variants={
        "heat-and-exercise": ("therapy",),
        "heat-exercise-and-rehabilitation": ("lasted", "therapy"),
    },
    applies_to=is_muscle_relaxant,
    evaluate=evaluate,
    config=Config,
    once_per_call=True,
    hooks=frozenset({"order-select"}),
)
