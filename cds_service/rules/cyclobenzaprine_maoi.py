"""cyclobenzaprine-maoi: contraindicated with MAO inhibitors and for 14 days after one.

When cyclobenzaprine is ordered while an MAO inhibitor is taken, ordered alongside, or was
last taken fewer than 14 days ago, then a critical card offers to remove the order. Evidence:
[FDA-IR] "contraindicated with MAO inhibitors or within 14 days after their discontinuation".
"""

from __future__ import annotations

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import is_cyclobenzaprine, remove

RULE_ID = "cyclobenzaprine-maoi"


class Config(RuleConfig):
    washout_days: int = Field(default=14, ge=1, le=365)


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    today = context.today
    found = [
        f"{d.drug.name} (ordered now)"
        for d in context.drafts
        if d.reference != order.reference and d.drug and terminology.is_medication("maoi", d.drug)
    ]
    for course in context.courses:
        if not terminology.is_medication("maoi", course.drug) or course.start > today:
            continue
        ago = (today - course.last_day).days
        if ago <= 0:
            found.append(f"{course.drug.name} (taken now, since {course.start.isoformat()})")
        elif ago < config.washout_days:
            found.append(f"{course.drug.name} (last taken {course.last_day.isoformat()}, {ago} days ago)")
    if not found:
        return None
    facts = {"maoi": "; ".join(found), "washout_days": str(config.washout_days)}
    return Finding(RULE_ID, "maoi", order, facts, remove(order))


RULE = Rule(id=RULE_ID, variants=("maoi",), applies_to=is_cyclobenzaprine, evaluate=evaluate, config=Config)
