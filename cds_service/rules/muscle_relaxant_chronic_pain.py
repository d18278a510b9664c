"""muscle-relaxant-chronic-pain: relaxants are for acute spasm, not chronic pain.

When a muscle relaxant is ordered for a patient with active chronic pain (chronic low back
pain, fibromyalgia, myalgia or myofascial pain) and no acute spasm (muscle spasm or back pain
with onset in the last 28 days), then warn and name the alternatives for that condition.
Evidence: [FAIL] "relaxants are for acute flares, not chronic non-spasm pain; fibromyalgia and
myofascial pain mimic spasm"; [ACP] for chronic low back pain, exercise and multidisciplinary
rehabilitation.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Condition, Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import condition_label, is_muscle_relaxant, since

RULE_ID = "muscle-relaxant-chronic-pain"
# Card variant per chronic condition, most specific first.
_VARIANTS = (
    ("fibromyalgia", "fibromyalgia"),
    ("myofascial-pain", "myofascial-pain"),
    ("chronic-low-back-pain", "chronic-low-back-pain"),
    ("other-chronic-pain", "chronic-low-back-pain"),
)


class Config(RuleConfig):
    acute_onset_days: int = Field(default=28, ge=1, le=365)


def _chronic(context: PatientContext, terminology: Terminology) -> tuple[str, str, Condition] | None:
    back_pain = any(terminology.in_concept("back-pain-spasm", c.codes) for c in context.conditions)
    for concept, variant in _VARIANTS:
        for condition in context.conditions:
            if terminology.in_concept(concept, condition.codes):
                # G89.29 "other chronic pain" is chronic back pain only beside a back pain code.
                if concept == "other-chronic-pain" and not back_pain:
                    continue
                return concept, variant, condition
    return None


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_muscle_relaxant(order, terminology):
        return None
    chronic = _chronic(context, terminology)
    if chronic is None:
        return None
    acute_since = context.today - timedelta(days=config.acute_onset_days)
    acute = any(
        (terminology.in_concept("muscle-spasm", c.codes) or terminology.in_concept("back-pain-spasm", c.codes))
        and c.onset is not None
        and c.onset >= acute_since
        for c in context.conditions
    )
    if acute:
        return None
    concept, variant, condition = chronic
    facts = {"condition": condition_label(condition, terminology, concept), "since": since(condition)}
    return Finding(RULE_ID, variant, order, facts)


RULE = Rule(
    id=RULE_ID,
    variants=("fibromyalgia", "myofascial-pain", "chronic-low-back-pain"),
    applies_to=is_muscle_relaxant,
    evaluate=evaluate,
    config=Config,
)
