"""cyclobenzaprine-older-adult: avoid in adults 65 and older; if used, the lowest dose.

When cyclobenzaprine is ordered for a patient aged 65 or older, at any dose: above 5 mg per dose
(sublingual: above 2.8 mg once a day, by dose or by frequency), as the extended-release capsule,
or at a dose that cannot be computed, then warn and offer two choices, the low dose or removal;
at 5 mg or less (sublingual 2.8 mg or less, at most once a day or how often not read), then
inform and offer removal, not recommended (one sublingual tablet once a day is its label's dose
at this age: that card asks for follow-up, not less frequent dosing). Evidence: [BEERS] "avoid skeletal
muscle relaxants in adults 65 and older: poorly tolerated, questionable effectiveness at
tolerated doses"; [FDA-IR] "elderly: start 5 mg, titrate slowly"; [FDA-ER] "should not be used
in the elderly"; [FDA-SL] 2.8 mg once daily in older adults.
"""

from __future__ import annotations

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, OlderAdultConfig, Rule
from cds_service.rules.common import (
    StartDoseConfig,
    age_facts,
    dose_and_how_often,
    dose_said,
    is_cyclobenzaprine,
    remove,
    start_dose_switch,
)

RULE_ID = "cyclobenzaprine-older-adult"


class Config(StartDoseConfig, OlderAdultConfig):
    """The age, then the start doses: the order of the bases is the order the rule catalog lists them."""


def _evidence(variant: str, sublingual: bool) -> tuple[str, ...]:
    """The label that speaks to this product: the capsules', the sublingual tablet's, or the tablets'."""
    label = "FDA-ER" if variant == "extended-release" else "FDA-SL" if sublingual else "FDA-IR"
    return ("BEERS", label)


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology) or not config.older(context):
        return None
    sublingual = order.drug is not None and order.drug.sublingual
    variant = config.above_start_dose(order)
    facts = {
        **age_facts(context),
        "drug": order.drug.name if order.drug else "cyclobenzaprine",
        "dose_mg": dose_said(order),
    }
    if sublingual and variant in (None, "sublingual-high-dose"):
        facts["ordered"] = dose_and_how_often(order)  # its low dose is how often too: the card says both
    if variant is None:
        # One sublingual tablet once a day is its label's dose at this age: "less often" cannot apply.
        variant = "sublingual-low-dose" if sublingual else "low-dose"
        proposals = remove(order, label="remove")
    else:
        swap, swap_facts = start_dose_switch(order, terminology, config)
        facts.update(swap_facts)
        proposals = (swap, *remove(order, label="remove"))
    return Finding(RULE_ID, variant, order, facts, proposals, evidence=_evidence(variant, sublingual))


RULE = Rule(
    id=RULE_ID,
    variants={
        "high-dose": ("age", "age_basis", "dose_mg", "drug", "low_dose"),
        "sublingual-high-dose": ("age", "age_basis", "dose_mg", "drug", "low_dose", "low_dose_mg", "ordered"),
        "extended-release": ("age", "age_basis", "dose_mg", "drug", "low_dose"),
        "dose-unknown": ("age", "age_basis", "dose_mg", "drug", "low_dose"),
        "low-dose": ("age", "age_basis", "dose_mg", "drug"),
        "sublingual-low-dose": ("age", "age_basis", "dose_mg", "drug", "ordered"),
    },
    applies_to=is_cyclobenzaprine,
    evaluate=evaluate,
    config=Config,
)
