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

from cds_service.context import Condition, Order, PatientContext, fmt_number
from cds_service.rules import Finding, Proposal, Rule, Thresholds
from cds_service.rules.actions import delete, update, with_product
from cds_service.rules.cyclobenzaprine_duration import is_cyclobenzaprine
from cds_service.terminology import Terminology

RULE_ID = "cyclobenzaprine-hepatic-impairment"
START_PRODUCT = "828320"  # cyclobenzaprine hydrochloride 5 MG Oral Tablet (RxNorm SCD)
MAX_PER_DAY = 3.0
_TIMES_A_DAY = {1.0: " once a day", 2.0: " twice a day", 3.0: " three times a day"}


def _describe(condition: Condition, terminology: Terminology) -> dict[str, str]:
    code = terminology.matching("liver-disease", condition.codes) or condition.codes[0]
    severity = next((c.display or c.code for c in condition.severity), None)
    return {
        "condition": f"{condition.display} ({code.code})",
        "since": f" since {condition.onset.isoformat()}" if condition.onset else "",
        "severity_note": f", recorded as {severity.lower()}" if severity else "",
    }


def evaluate(context: PatientContext, order: Order, terminology: Terminology, limits: Thresholds) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    liver = [c for c in context.conditions if terminology.in_concept("liver-disease", c.codes)]
    if not liver:
        return None
    severe = [
        c
        for c in liver
        if terminology.in_concept("liver-disease-moderate-severe", c.codes)
        or terminology.in_concept("severity-moderate-severe", c.severity)
    ]
    if severe:
        facts = _describe(severe[0], terminology)
        return Finding(RULE_ID, "moderate-severe", order, facts, (Proposal(actions=(delete(order),)),))

    assert order.drug is not None  # is_cyclobenzaprine checked it
    if order.drug.extended_release:
        variant = "extended-release"
    elif order.dose_mg is not None and order.dose_mg > limits.hepatic_start_dose_mg:
        variant = "mild-high-dose"
    else:
        return None
    product = terminology.products[START_PRODUCT]
    per_day = min(order.per_day, MAX_PER_DAY) if order.per_day is not None else None
    facts = {
        **_describe(liver[0], terminology),
        "drug": order.drug.name,
        "dose_mg": fmt_number(order.dose_mg) if order.dose_mg is not None else "unknown",
        "frequency": _TIMES_A_DAY.get(per_day, "") if per_day is not None else "",
    }
    swap = update(with_product(order, product, max_per_day=MAX_PER_DAY))
    return Finding(RULE_ID, variant, order, facts, (Proposal(actions=(swap,), recommended=True),))


RULE = Rule(
    id=RULE_ID,
    variants=("moderate-severe", "mild-high-dose", "extended-release"),
    applies_to=is_cyclobenzaprine,
    evaluate=evaluate,
)
