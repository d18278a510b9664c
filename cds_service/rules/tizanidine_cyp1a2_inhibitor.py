"""tizanidine-cyp1a2-inhibitor: tizanidine with fluvoxamine or ciprofloxacin, either way round.

When tizanidine is ordered while a systemic fluvoxamine or ciprofloxacin is taken or ordered
alongside, or one of these inhibitors is ordered while tizanidine is taken or ordered alongside,
then a critical card offers to remove the draft under review. Eye and ear ciprofloxacin do not
count. When both drafts are under review in one call, the card goes on the tizanidine order
alone (one card for the pair; accepting both removals would drop both drugs).
Evidence: [FDA-TIZ] contraindicated with fluvoxamine or ciprofloxacin (exposure about 33-fold
and 10-fold: hypotension, somnolence).
"""

from __future__ import annotations

from cds_service.content.terminology import Drug, Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import remove
from cds_service.rules.interactions import alongside, ingredients, labels

RULE_ID = "tizanidine-cyp1a2-inhibitor"
TIZANIDINE = "tizanidine"
INHIBITOR = "cyp1a2-inhibitor"


def _is_tizanidine(drug: Drug | None, terminology: Terminology) -> bool:
    return terminology.is_medication(TIZANIDINE, drug)


def _is_inhibitor(drug: Drug | None, terminology: Terminology) -> bool:
    """A systemic fluvoxamine or ciprofloxacin: eye and ear drops do not reach the liver enough."""
    return drug is not None and drug.systemic and terminology.is_medication(INHIBITOR, drug)


def applies_to(order: Order, terminology: Terminology) -> bool:
    """Either drug of the pair: an order for ciprofloxacin alone must reach this rule."""
    return _is_tizanidine(order.drug, terminology) or _is_inhibitor(order.drug, terminology)


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: RuleConfig) -> Finding | None:
    if order.drug is None:
        return None
    if _is_tizanidine(order.drug, terminology):
        variant = "tizanidine-ordered"
        found = [a for a in alongside(context, order, terminology, (INHIBITOR,)) if _is_inhibitor(a.drug, terminology)]
        inhibitor = ingredients(found)
    elif _is_inhibitor(order.drug, terminology):
        variant = "inhibitor-ordered"
        # A tizanidine draft under review carries the card for the pair.
        found = [a for a in alongside(context, order, terminology, (TIZANIDINE,)) if not a.under_review]
        inhibitor = ", ".join(terminology.ingredients_of(INHIBITOR, order.drug))
    else:
        return None
    if not found:
        return None
    facts = {"drug": order.drug.name, "others": labels(found), "inhibitor": inhibitor}
    return Finding(RULE_ID, variant, order, facts, remove(order))


FACTS = ("drug", "inhibitor", "others")

RULE = Rule(
    id=RULE_ID,
    variants=dict.fromkeys(("tizanidine-ordered", "inhibitor-ordered"), FACTS),
    applies_to=applies_to,
    evaluate=evaluate,
    config=RuleConfig,
)
