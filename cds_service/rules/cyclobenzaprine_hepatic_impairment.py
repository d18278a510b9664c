"""cyclobenzaprine-hepatic-impairment: a low start dose, or none at all, with hepatic impairment.

When cyclobenzaprine is ordered for a patient with active moderate or severe hepatic
impairment (a decompensation marker: hepatic failure, coma or encephalopathy, hepatorenal
syndrome, ascites, portal hypertension, varices; or a Condition.severity of moderate/severe on
a liver condition), then it is not recommended: a critical card offers to remove the order.
When the impairment is mild and the dose is above 5 mg (sublingual: above 2.8 mg once a day,
by dose or by frequency), cannot be read (in mL, a strength not known) or the product is
extended release, then warn and offer the start dose. Cirrhosis whose severity is not recorded
counts as mild, and the card says so at any dose: Child-Pugh B or C would rule the drug out.
Simple steatosis (fatty liver, NASH) is not hepatic impairment: liver function is normal as a
rule. Evidence: [FDA-IR] "mild hepatic impairment: start 5 mg, titrate slowly; moderate or
severe: not recommended"; [FDA-ER] "should not be used with impaired hepatic function";
[FDA-SL] 2.8 mg once daily in mild hepatic impairment, not recommended in moderate or severe.
"""

from __future__ import annotations

from cds_service.content.terminology import Terminology
from cds_service.facts.history import Condition
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule
from cds_service.rules.common import (
    StartDoseConfig,
    dose_and_how_often,
    dose_said,
    is_cyclobenzaprine,
    remove,
    start_dose_switch,
)
from cds_service.rules.condition_said import condition_label, since

RULE_ID = "cyclobenzaprine-hepatic-impairment"
# Cirrhosis is hepatic impairment whatever the VSAC sets hold: they list the billable codes
# (K74.60), not the category a problem list may carry (K74.6), which §4's cirrhosis prefixes take.
_IMPAIRMENT = frozenset(("liver-disease", "liver-disease-moderate-severe", "liver-cirrhosis"))
_UNRECORDED = " Its severity is not recorded: if Child-Pugh B or C, cyclobenzaprine is not recommended."


def _describe(condition: Condition, terminology: Terminology, concept: str) -> dict[str, str]:
    severity = next((c.display or c.code for c in condition.severity), None)
    return {
        "condition": condition_label(condition, terminology, concept),
        "since": since(condition),
        "severity_note": f", recorded as {severity.lower()}" if severity else "",
    }


def _moderate_severe(liver: list[Condition], context: PatientContext, terminology: Terminology) -> Condition | None:
    """A decompensation marker, a moderate/severe Condition.severity on a liver condition, or
    "other ascites" alongside a liver condition: the first that holds."""
    for condition in liver:
        if "liver-disease-moderate-severe" in condition.concepts or terminology.in_concept(
            "severity-moderate-severe", condition.severity
        ):
            return condition
    ascites = [c for c in context.conditions if "ascites-other" in c.concepts]
    return ascites[0] if ascites and liver else None


def _unrecorded_cirrhosis(liver: list[Condition]) -> Condition | None:
    """Cirrhosis with no severity on record (a recorded mild severity counts as recorded)."""
    return next(
        (c for c in liver if "liver-cirrhosis" in c.concepts and not c.severity),
        None,
    )


def evaluate(
    context: PatientContext, order: Order, terminology: Terminology, limits: StartDoseConfig
) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    liver = [c for c in context.conditions if not c.concepts.isdisjoint(_IMPAIRMENT)]
    if not liver:
        return None
    sublingual = order.drug is not None and order.drug.sublingual
    evidence = ("FDA-SL",) if sublingual else ("FDA-IR",)  # the label of the product ordered
    severe = _moderate_severe(liver, context, terminology)
    if severe is not None:
        facts = _describe(severe, terminology, "ascites-other" if severe not in liver else "liver-disease")
        if severe not in liver:
            facts["severity_note"] = f", with {condition_label(liver[0], terminology, 'liver-disease')}"
        return Finding(RULE_ID, "moderate-severe", order, facts, remove(order), evidence=evidence)

    cirrhosis = _unrecorded_cirrhosis(liver)
    shown = cirrhosis or liver[0]
    facts = {**_describe(shown, terminology, "liver-disease"), "unrecorded_note": _UNRECORDED if cirrhosis else ""}
    reason = limits.above_start_dose(order)
    if reason is None:
        if cirrhosis is None:
            return None
        assert order.dose_mg is not None  # an unreadable dose is "dose-unknown", above
        # The sublingual low dose is how often too, its card says both: "this low dose follows
        # the label", the tablets' words, was said of 2.8 mg with no frequency read.
        variant = "cirrhosis-severity-unknown-sublingual" if sublingual else "cirrhosis-severity-unknown"
        dose = dose_and_how_often(order) if sublingual else f"{dose_said(order)} mg per dose"
        return Finding(RULE_ID, variant, order, {**facts, "dose": dose}, evidence=evidence)
    proposal, dose_facts = start_dose_switch(order, terminology, limits)
    variant = _VARIANTS.get(reason, reason)
    if reason == "sublingual-high-dose":  # above by its dose or by how often: the card says which
        dose_facts["ordered"] = dose_and_how_often(order)
    cited = ("FDA-IR", "FDA-ER") if reason == "extended-release" else evidence
    return Finding(RULE_ID, variant, order, {**facts, **dose_facts}, (proposal,), evidence=cited)


# The card variant for each reason ``StartDoseConfig.above_start_dose`` gives.
_VARIANTS = {
    "high-dose": "mild-high-dose",
    "sublingual-high-dose": "mild-sublingual-high-dose",
    "dose-unknown": "mild-dose-unknown",
}
_DOSE_FACTS = ("condition", "dose_mg", "drug", "low_dose", "severity_note", "since", "unrecorded_note")
_INFO_FACTS = ("condition", "dose", "severity_note", "since", "unrecorded_note")

RULE = Rule(
    id=RULE_ID,
    variants={
        "moderate-severe": ("condition", "severity_note", "since"),
        "mild-high-dose": _DOSE_FACTS,
        "mild-sublingual-high-dose": (*_DOSE_FACTS, "low_dose_mg", "ordered"),
        "extended-release": _DOSE_FACTS,
        "mild-dose-unknown": _DOSE_FACTS,
        "cirrhosis-severity-unknown": _INFO_FACTS,
        "cirrhosis-severity-unknown-sublingual": _INFO_FACTS,
    },
    applies_to=is_cyclobenzaprine,
    evaluate=evaluate,
    config=StartDoseConfig,
)
