"""cyclobenzaprine-contraindicated-condition: hyperthyroidism, heart block, arrhythmia, heart
failure, or a recent myocardial infarction.

When cyclobenzaprine is ordered for a patient with an active hyperthyroidism, heart block or
conduction disturbance, arrhythmia or congestive heart failure, or a myocardial infarction
with onset in the last 90 days, then a critical card names the condition and offers to remove
the order. Evidence: [FDA-IR] contraindications (including "acute recovery phase of
myocardial infarction").
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import condition_label, is_cyclobenzaprine, remove, since

RULE_ID = "cyclobenzaprine-contraindicated-condition"
CONTRAINDICATIONS = ("hyperthyroidism", "heart-block", "arrhythmia", "heart-failure")


class Config(RuleConfig):
    recent_mi_days: int = Field(default=90, ge=1, le=3650)


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    recent = context.today - timedelta(days=config.recent_mi_days)
    found: list[str] = []
    kinds: list[str] = []
    for condition in context.conditions:
        concept = next((c for c in CONTRAINDICATIONS if terminology.in_concept(c, condition.codes)), None)
        recent_mi = condition.onset is not None and condition.onset >= recent
        if concept is None and recent_mi and terminology.in_concept("myocardial-infarction", condition.codes):
            concept = "myocardial-infarction"
        if concept is None:
            continue
        found.append(f"**{condition_label(condition, terminology, concept)}**{since(condition)}")
        kind = terminology.code_concepts[concept].title.lower()
        if kind not in kinds:
            kinds.append(kind)
    if not found:
        return None
    facts = {"conditions": "; ".join(found), "kinds": " and ".join(kinds)}
    return Finding(RULE_ID, "contraindicated", order, facts, remove(order))


RULE = Rule(
    id=RULE_ID,
    variants=("contraindicated",),
    applies_to=is_cyclobenzaprine,
    evaluate=evaluate,
    config=Config,
)
