"""cyclobenzaprine-hepatic-impairment: start at 5 mg, or not at all, with liver disease.

When cyclobenzaprine is ordered for a patient with active moderate or severe hepatic
impairment (the moderate-to-severe value set, or a Condition.severity of moderate/severe),
then it is not recommended: a critical card offers to remove the order. When the impairment
is mild and the dose is above 5 mg or the product is extended release, then warn and offer
the 5 mg tablet. Evidence: [FDA-IR] "mild hepatic impairment: start 5 mg, titrate slowly;
moderate or severe: not recommended"; [FDA-ER] "should not be used with impaired hepatic
function".
"""

from __future__ import annotations

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Condition, Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import (
    above_start_dose,
    condition_label,
    is_cyclobenzaprine,
    remove,
    since,
    start_dose_switch,
)

RULE_ID = "cyclobenzaprine-hepatic-impairment"


class Config(RuleConfig):
    start_dose_mg: float = Field(default=5.0, gt=0)


def _describe(condition: Condition, terminology: Terminology) -> dict[str, str]:
    severity = next((c.display or c.code for c in condition.severity), None)
    return {
        "condition": condition_label(condition, terminology, "liver-disease"),
        "since": since(condition),
        "severity_note": f", recorded as {severity.lower()}" if severity else "",
    }


def evaluate(context: PatientContext, order: Order, terminology: Terminology, limits: Config) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    liver = [
        c
        for c in context.conditions
        if terminology.in_concept("liver-disease", c.codes)
        or terminology.in_concept("liver-disease-moderate-severe", c.codes)
    ]
    if not liver:
        return None
    severe = [
        c
        for c in liver
        if terminology.in_concept("liver-disease-moderate-severe", c.codes)
        or terminology.in_concept("severity-moderate-severe", c.severity)
    ]
    if severe:
        return Finding(RULE_ID, "moderate-severe", order, _describe(severe[0], terminology), remove(order))

    reason = above_start_dose(order, limits.start_dose_mg)
    if reason is None:
        return None
    proposals, facts = start_dose_switch(order, terminology)
    variant = "mild-high-dose" if reason == "high-dose" else reason
    return Finding(RULE_ID, variant, order, {**_describe(liver[0], terminology), **facts}, proposals)


RULE = Rule(
    id=RULE_ID,
    variants=("moderate-severe", "mild-high-dose", "extended-release"),
    applies_to=is_cyclobenzaprine,
    evaluate=evaluate,
    config=Config,
)
