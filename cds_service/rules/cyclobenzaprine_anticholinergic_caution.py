"""cyclobenzaprine-anticholinergic-caution: urinary retention, benign prostatic hyperplasia with
urinary symptoms, angle-closure glaucoma or a narrow angle, or ocular hypertension.

Cyclobenzaprine has atropine-like action; its label advises caution with urinary retention,
angle-closure glaucoma and increased intraocular pressure [FDA-IR]: anticholinergic effects can
precipitate retention in an obstructed bladder outlet, and pupil dilation can close a narrow
angle. A caution, not a contraindication: a warning that names the condition, no suggestion.
BPH without urinary symptoms (N40.0) and open-angle glaucoma are not in the sets (§4).
"""

from __future__ import annotations

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import is_cyclobenzaprine
from cds_service.rules.condition_said import condition_facts, condition_subject

RULE_ID = "cyclobenzaprine-anticholinergic-caution"
CAUTIONS = ("urinary-retention", "bph-urinary-symptoms", "angle-closure", "ocular-hypertension")
_ANY_CAUTION = frozenset(CAUTIONS)


class Config(RuleConfig):
    """No thresholds: any active condition of the sets counts. A snooze holds for the conditions
    its card named (``Finding.subject``): said of benign prostatic hyperplasia, it does not hide an
    angle-closure glaucoma recorded next."""


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    found = [
        (condition, concept)
        for condition in context.conditions
        if not condition.concepts.isdisjoint(_ANY_CAUTION)  # most conditions: no caution, asked in C
        and (concept := next((c for c in CAUTIONS if c in condition.concepts), None)) is not None
    ]
    if not found:
        return None
    subject = condition_subject(((concept, condition) for condition, concept in found), terminology)
    return Finding(RULE_ID, "caution", order, condition_facts(found, context.today, terminology), subject=subject)


FACTS = ("condition", "conditions")

RULE = Rule(
    id=RULE_ID,
    variants=dict.fromkeys(("caution",), FACTS),
    applies_to=is_cyclobenzaprine,
    evaluate=evaluate,
    config=Config,
)
