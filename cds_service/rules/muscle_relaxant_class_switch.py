"""muscle-relaxant-class-switch: the same relaxant again after a recent course.

When a muscle relaxant is ordered and the patient took a course of the same ingredient that
started in the last 90 days and has ended (a repeat after failure), then suggest checking dose
and adherence first, and if it failed an agent with another mechanism: tizanidine, an α2
agonist (or, when tizanidine is the one repeated, cyclobenzaprine). At 65 and older the card
names no relaxant (Beers: avoid them) and points to nonpharmacologic care instead.
Evidence: [FAIL] failure from too low or inconsistent dosing, tolerance with prolonged use, a
patient may respond to another agent; [BEERS] at 65 and older.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.history import Course
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import AdviceAgeConfig, Finding, Rule, RuleConfig
from cds_service.rules.common import age_facts, date_shown, is_muscle_relaxant

RULE_ID = "muscle-relaxant-class-switch"


class _Lookback(RuleConfig):
    lookback_days: int = Field(default=90, ge=1, le=3650)

    def history_days(self) -> int:
        return self.lookback_days


class Config(AdviceAgeConfig, _Lookback):
    """The look-back, then the age from which the card names no relaxant (Beers Criteria, 65 at
    most: the card fires at any age): the bases in this order keep the order the rule catalog has
    always listed them in."""


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_muscle_relaxant(order, terminology):
        return None
    assert order.drug is not None
    own = set(terminology.ingredients_of("muscle-relaxant", order.drug))
    earliest = context.today - timedelta(days=config.lookback_days)
    # A course still running is a duplicate, not a failure: muscle-relaxant-duplicate speaks to it.
    prior = [
        c
        for c in context.courses
        if earliest <= c.start
        and c.end <= context.today
        and not c.active_on(context.today)  # a month (or, listed, a year) alone: it may run still (the duplicate's)
        and "muscle-relaxant" in c.concepts
        and c.start_known  # begun in the window: unknown, with no start date
        and own & set(terminology.ingredients_of("muscle-relaxant", c.drug))
    ]
    if not prior:
        return None
    latest = max(prior, key=lambda c: c.start)
    facts = {
        "ingredient": order.drug.ingredient,
        "prior_start": date_shown(latest.start, latest.start_parts),
        "prior_end": _last_day(latest),
        "age": age_facts(context)["age"],
    }
    if config.older(context):
        return Finding(RULE_ID, "older-adult", order, facts, evidence=("FAIL", "BEERS"))
    variant = "repeat-tizanidine" if order.drug.ingredient == "tizanidine" else "repeat-course"
    return Finding(RULE_ID, variant, order, facts, evidence=("FAIL",))


FACTS = ("age", "ingredient", "prior_end", "prior_start")


def _last_day(course: Course) -> str:
    """Its last day of use (``Course.taken_to``: 06:00Z to 06:00Z ends the day before, as the
    days taken count it); a course whose start was a month or a year alone ended by then at the latest."""
    if course.start_parts == 3 or course.end_recorded:
        return course.taken_to.isoformat()
    return f"{(course.end_latest - timedelta(days=1)).isoformat()} at the latest"


RULE = Rule(
    id=RULE_ID,
    variants=dict.fromkeys(("repeat-course", "repeat-tizanidine", "older-adult"), FACTS),
    applies_to=is_muscle_relaxant,
    evaluate=evaluate,
    config=Config,
)
