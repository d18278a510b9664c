"""muscle-relaxant-duplicate: two skeletal muscle relaxants at once.

When a muscle relaxant is ordered while another one is taken or ordered alongside, then warn,
name both, and offer to remove the new draft. Evidence: [FAIL] (relaxants add sedation, not
benefit, when combined; a failing drug calls for review rather than a second one).
"""

from __future__ import annotations

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import active_medications, is_muscle_relaxant, remove

RULE_ID = "muscle-relaxant-duplicate"


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: RuleConfig) -> Finding | None:
    if not is_muscle_relaxant(order, terminology):
        return None
    others = active_medications(context, order, terminology, "muscle-relaxant")
    if not others:
        return None
    assert order.drug is not None
    return Finding(RULE_ID, "duplicate", order, {"drug": order.drug.name, "others": "; ".join(others)}, remove(order))


RULE = Rule(id=RULE_ID, variants=("duplicate",), applies_to=is_muscle_relaxant, evaluate=evaluate)
