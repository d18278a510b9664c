"""muscle-relaxant-class-switch: the same relaxant again after a recent course.

When a muscle relaxant is ordered and the patient finished a course of the same ingredient in
the last 90 days (a repeat after failure), then suggest checking dose and adherence first, and
otherwise a relaxant of another class. Evidence: [FAIL] "failure from too low or inconsistent
dosing; a patient may respond to another class (centrally acting such as cyclobenzaprine vs
antispasmodic such as baclofen)".
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import is_muscle_relaxant

RULE_ID = "muscle-relaxant-class-switch"


class Config(RuleConfig):
    lookback_days: int = Field(default=90, ge=1, le=3650)


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_muscle_relaxant(order, terminology):
        return None
    assert order.drug is not None
    earliest = context.today - timedelta(days=config.lookback_days)
    # A course still running is a duplicate, not a failure: muscle-relaxant-duplicate speaks to it.
    prior = [
        c
        for c in context.courses
        if c.drug.ingredient == order.drug.ingredient and earliest <= c.start and c.end <= context.today
    ]
    if not prior:
        return None
    latest = max(prior, key=lambda c: c.start)
    facts = {
        "ingredient": order.drug.ingredient,
        "prior_start": latest.start.isoformat(),
        "prior_end": latest.last_day.isoformat(),
    }
    return Finding(RULE_ID, "repeat-course", order, facts)


RULE = Rule(id=RULE_ID, variants=("repeat-course",), applies_to=is_muscle_relaxant, evaluate=evaluate, config=Config)
