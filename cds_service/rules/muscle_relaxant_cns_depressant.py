"""muscle-relaxant-cns-depressant: a muscle relaxant with an opioid, benzodiazepine, barbiturate,
Z-drug or gabapentinoid.

When a muscle relaxant is ordered for a patient taking (or being ordered) one of these CNS
depressants, then warn of additive sedation and respiratory depression and name the drugs; at
65 and older add the Beers advice. The relaxant order's own ingredients never count (a
carisoprodol-codeine product is not its own interaction); another order's combination product
counts by its depressant part (codeine), its relaxant part being muscle-relaxant-duplicate's.
Evidence: [FDA-IR] "may enhance the effects of alcohol, barbiturates and other CNS
depressants"; [FDA-OPIOID] only when an opioid or benzodiazepine is named; [FDA-GABA] only for
a gabapentinoid; [BEERS] at 65 and older.
"""

from __future__ import annotations

from cds_service.content.markdown import named
from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, OlderAdultConfig, Rule
from cds_service.rules.common import age_facts, is_muscle_relaxant
from cds_service.rules.interactions import alongside, drug_subject, labels

RULE_ID = "muscle-relaxant-cns-depressant"
CLASSES = ("opioid", "benzodiazepine", "barbiturate", "z-drug", "gabapentinoid")


def evaluate(
    context: PatientContext, order: Order, terminology: Terminology, config: OlderAdultConfig
) -> Finding | None:
    if not is_muscle_relaxant(order, terminology):
        return None
    found = alongside(context, order, terminology, CLASSES)
    if not found:
        return None
    classes = {c for a in found for c in CLASSES if terminology.is_medication(c, a.drug)}
    depressants = [i for a in found for c in CLASSES for i in terminology.ingredients_of(c, a.drug)]
    older = config.older(context)
    assert order.drug is not None
    # The cyclobenzaprine label speaks for cyclobenzaprine only; another relaxant's card cites the
    # warnings about what it is taken with (and the label's class warning when nothing else applies).
    evidence = ["FDA-IR"] if order.drug.ingredient == "cyclobenzaprine" else []
    if classes & {"opioid", "benzodiazepine"}:
        evidence.append("FDA-OPIOID")
    if "gabapentinoid" in classes:
        evidence.append("FDA-GABA")
    if older:
        evidence.append("BEERS")
    evidence = evidence or ["FDA-IR"]
    facts = {
        "relaxant": order.drug.ingredient,
        "drug": order.drug.name,
        "ingredients": named(dict.fromkeys(depressants), ", "),
        "drugs": labels(found),
        "age": age_facts(context)["age"],
    }
    variant = "older-adult" if older else "cns-depressant"
    subject = drug_subject(found, terminology, CLASSES)
    return Finding(RULE_ID, variant, order, facts, evidence=tuple(evidence), subject=subject)


FACTS = ("age", "drug", "drugs", "ingredients", "relaxant")

RULE = Rule(
    id=RULE_ID,
    variants=dict.fromkeys(("cns-depressant", "older-adult"), FACTS),
    applies_to=is_muscle_relaxant,
    evaluate=evaluate,
    config=OlderAdultConfig,  # from its min_age the card adds the Beers advice on CNS-active drugs
)
