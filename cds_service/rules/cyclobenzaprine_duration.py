"""cyclobenzaprine-duration: limit cyclobenzaprine to 2–3 weeks.

When a cyclobenzaprine order plans more than 21 days, or prior courses in the last 30 days
bring this order's total past 21 days, then warn and offer to shorten it; when it states no
duration at all, then ask for one. Evidence: [FDA-IR] and [FDA-ER] "use only for short
periods (up to 2–3 weeks)"; [FAIL] tolerance with prolonged use.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Course, Order, PatientContext
from cds_service.facts.sig import fmt_number
from cds_service.rules import Finding, Proposal, Rule, RuleConfig
from cds_service.rules.actions import update, with_duration
from cds_service.rules.common import is_cyclobenzaprine

RULE_ID = "cyclobenzaprine-duration"


class Config(RuleConfig):
    max_days: int = Field(default=21, ge=1, le=365)
    cumulative_window_days: int = Field(default=30, ge=1, le=365)


def _days_taken(courses: list[Course], since: date, today: date) -> int:
    """Days on which any of ``courses`` ran between ``since`` and ``today`` (overlaps count once)."""
    taken: set[date] = set()
    for course in courses:
        day = max(course.start, since)
        while day < min(course.end, today + timedelta(days=1)):
            taken.add(day)
            day += timedelta(days=1)
    return len(taken)


def evaluate(context: PatientContext, order: Order, terminology: Terminology, limits: Config) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    limit = limits.max_days
    since = context.today - timedelta(days=limits.cumulative_window_days)
    prior = [
        c
        for c in context.courses
        if terminology.is_medication("cyclobenzaprine", c.drug) and c.end > since and c.start <= context.today
    ]
    prior_days = _days_taken(prior, since, context.today)
    planned = order.planned_days

    if planned is None:
        variant = "duration-unknown"
    elif prior_days and prior_days + planned > limit:
        variant = "cumulative-too-long"
    elif planned > limit:
        variant = "planned-too-long"
    else:
        return None

    # Shorten to what is left of the limit; when nothing is left the card stands without an update.
    suggested = limit - prior_days
    proposals = ()
    if suggested > 0 and (planned is not None or order.units_per_day is not None):
        proposals = (Proposal(actions=(update(with_duration(order, suggested)),), recommended=True),)
    facts = {
        "limit_days": str(limit),
        "suggested_days": str(suggested),
        "planned_days": fmt_number(planned) if planned is not None else "unknown",
        "duration_basis": order.duration_basis or "",
        "prior_days": str(prior_days),
        "prior_courses": ", ".join(
            f"course started {c.start.isoformat()}" for c in sorted(prior, key=lambda c: c.start)
        ),
        "cumulative_days": fmt_number(prior_days + (planned or 0)),
    }
    return Finding(RULE_ID, variant, order, facts, proposals)


RULE = Rule(
    id=RULE_ID,
    variants=("planned-too-long", "cumulative-too-long", "duration-unknown"),
    applies_to=is_cyclobenzaprine,
    evaluate=evaluate,
    config=Config,
)
