"""muscle-relaxant-duplicate: two skeletal muscle relaxants at once.

When a muscle relaxant is ordered while another one is taken or ordered alongside, then warn,
name both, and offer to remove the new draft. The same ingredient again asks "a renewal or a
duplicate?" (clinical specification §2, v2 change 9), one listed with no start date in the
same words, undated. Of two relaxant drafts under review in
one call, the later one carries the card, so that removing it leaves the first.
Evidence: [FAIL] (a relaxant that fails calls for review of dose and adherence, or another
agent, not a second one on top).
"""

from __future__ import annotations

from collections.abc import Callable

from cds_service.content.markdown import named
from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import is_cyclobenzaprine, is_muscle_relaxant, remove
from cds_service.rules.course_said import ordered_on
from cds_service.rules.interactions import Alongside, alongside, drug_subject, labels

RULE_ID = "muscle-relaxant-duplicate"
RELAXANT = "muscle-relaxant"


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: RuleConfig) -> Finding | None:
    if not is_muscle_relaxant(order, terminology):
        return None
    # Positions of the drafts under review, found once per order (not once per other drug: that
    # made the rule cubic in the drafts of one call).
    reviewed = {o.reference: index for index, o in enumerate(context.under_review)}
    found = [a for a in alongside(context, order, terminology, (RELAXANT,)) if _counts(a, order, reviewed)]
    if not found:
        return None
    own = set(terminology.ingredients_of(RELAXANT, order.drug))
    same = [a for a in found if own & set(terminology.ingredients_of(RELAXANT, a.drug))]
    assert order.drug is not None
    ingredients = dict.fromkeys(i for a in found for i in terminology.ingredients_of(RELAXANT, a.drug))
    facts = {
        "relaxant": order.drug.ingredient,
        "drug": order.drug.name,
        "others": labels(found),
        "ingredients": named(ingredients, ", "),
    }
    finding = _finding(order, facts, drug_subject(found, terminology, (RELAXANT,)))
    listed = [a for a in same if a.since is not None]  # on record, not drafted now
    dated = [(a.since, ordered_on(a.since, a.since_parts), a.status) for a in listed if a.since and a.since_known]
    active = [entry for entry in dated if entry[2] == "active"]
    # An active order speaks for the card, by its own date; none active with a date, an active one
    # with none does (undated); else the latest of those marked completed, stopped or on hold.
    if active or (dated and not any(a.status == "active" for a in listed)):
        _, facts["ordered"], status = max(active or dated)
        facts["status"] = status.replace("-", " ")
        return finding("same-drug" if active else "same-drug-finished")
    if listed:  # listed, no start date recorded
        # Its days taken unknown, a renewal of oral cyclobenzaprine may pass the label's 2–3 weeks
        # unseen (cyclobenzaprine-duration counts no days it cannot date): said where it is decided.
        oral_cyclobenzaprine = is_cyclobenzaprine(order, terminology) and not order.drug.sublingual
        variant = "same-drug-undated-short-use" if oral_cyclobenzaprine else "same-drug-undated"
        return finding(variant)
    return finding("same-drug-draft" if same else "duplicate")


def _finding(order: Order, facts: dict[str, str], subject: frozenset[str]) -> Callable[[str], Finding]:
    """The card of a variant: it names the other relaxants' ingredients (its subject)."""
    return lambda variant: Finding(RULE_ID, variant, order, facts, remove(order), subject=subject)


def _counts(other: Alongside, order: Order, reviewed: dict[str, int]) -> bool:
    """Another draft under review counts only when it comes first: one card for the pair.
    ``reviewed``: each draft under review's position among them."""
    if not other.under_review:
        return True
    return order.reference in reviewed and reviewed[other.reference] < reviewed[order.reference]


RULE = Rule(
    id=RULE_ID,
    variants={
        "duplicate": ("drug", "ingredients", "others", "relaxant"),
        "same-drug": ("drug", "ingredients", "ordered", "others", "relaxant", "status"),
        "same-drug-finished": ("drug", "ingredients", "ordered", "others", "relaxant", "status"),
        "same-drug-draft": ("drug", "ingredients", "others", "relaxant"),
        "same-drug-undated": ("drug", "ingredients", "others", "relaxant"),
        "same-drug-undated-short-use": ("drug", "ingredients", "others", "relaxant"),
    },
    applies_to=is_muscle_relaxant,
    evaluate=evaluate,
    config=RuleConfig,
)
