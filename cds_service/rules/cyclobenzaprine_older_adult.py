"""cyclobenzaprine-older-adult: avoid in adults 65 and older; if used, start at 5 mg.

When cyclobenzaprine is ordered for a patient aged 65 or older, at more than 5 mg per dose or
as the extended-release capsule, then warn and offer the 5 mg tablet. Evidence: [BEERS] "avoid
skeletal muscle relaxants in adults 65 and older: poorly tolerated, questionable effectiveness
at tolerated doses"; [FDA-IR] "elderly: start 5 mg, titrate slowly"; [FDA-ER] "should not be
used in the elderly".
"""

from __future__ import annotations

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import above_start_dose, is_cyclobenzaprine, start_dose_switch

RULE_ID = "cyclobenzaprine-older-adult"


class Config(RuleConfig):
    min_age: int = Field(default=65, ge=0, le=130)
    start_dose_mg: float = Field(default=5.0, gt=0)


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology) or context.age is None or context.age < config.min_age:
        return None
    variant = above_start_dose(order, config.start_dose_mg)
    if variant is None:
        return None
    proposals, facts = start_dose_switch(order, terminology)
    return Finding(RULE_ID, variant, order, {**facts, "age": str(context.age)}, proposals)


RULE = Rule(
    id=RULE_ID,
    variants=("high-dose", "extended-release"),
    applies_to=is_cyclobenzaprine,
    evaluate=evaluate,
    config=Config,
)
