"""muscle-relaxant-older-adult: avoid the Beers muscle relaxants in adults 65 and older.

When carisoprodol, chlorzoxazone, metaxalone, methocarbamol or orphenadrine is ordered for a
patient aged 65 or older, then warn, name the drug, and offer to remove the order
(cyclobenzaprine has its own rule, with its dose advice). Evidence: [BEERS] "avoid skeletal
muscle relaxants in adults 65 and older: poorly tolerated, questionable effectiveness at
tolerated doses (strong recommendation)".
"""

from __future__ import annotations

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, OlderAdultConfig, Rule
from cds_service.rules.common import age_facts, remove

RULE_ID = "muscle-relaxant-older-adult"


def is_beers_relaxant(order: Order, terminology: Terminology) -> bool:
    return terminology.is_medication("beers-muscle-relaxant", order.drug)


def evaluate(
    context: PatientContext, order: Order, terminology: Terminology, config: OlderAdultConfig
) -> Finding | None:
    if not is_beers_relaxant(order, terminology) or not config.older(context):
        return None
    assert order.drug is not None  # is_beers_relaxant holds
    ingredients = sorted(terminology.medication_concepts["beers-muscle-relaxant"])
    named = [i for i in ingredients if i in order.drug.name.lower()] or [order.drug.ingredient]
    facts = {**age_facts(context), "ingredient": " and ".join(named), "drug": order.drug.name}
    return Finding(RULE_ID, "avoid", order, facts, remove(order))


FACTS = ("age", "age_basis", "drug", "ingredient")

RULE = Rule(
    id=RULE_ID,
    variants=dict.fromkeys(("avoid",), FACTS),
    applies_to=is_beers_relaxant,
    evaluate=evaluate,
    config=OlderAdultConfig,
)
