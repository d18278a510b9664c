"""cyclobenzaprine-serotonergic: serotonin syndrome risk with the label's serotonergic drugs.

When cyclobenzaprine is ordered for a patient taking (or being ordered) a drug of the label's
list (SSRI, SNRI, vilazodone, vortioxetine, tricyclic antidepressant, tramadol, bupropion,
meperidine or verapamil), then warn and name the drug; with tramadol, also its seizure risk.
Other antidepressants (trazodone, mirtazapine) are not on the label's list and do not count.
Evidence: [FDA-IR] serotonin syndrome warning; "may enhance the seizure risk of tramadol".
"""

from __future__ import annotations

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import is_cyclobenzaprine
from cds_service.rules.interactions import alongside, drug_subject, ingredients, labels

RULE_ID = "cyclobenzaprine-serotonergic"
SEROTONERGIC = "serotonergic"


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: RuleConfig) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    found = alongside(context, order, terminology, (SEROTONERGIC,))
    if not found:
        return None
    with_tramadol = any(a.drug.ingredient == "tramadol" for a in found)
    facts = {"drugs": labels(found), "ingredients": ingredients(found)}
    subject = drug_subject(found, terminology, (SEROTONERGIC,))
    return Finding(RULE_ID, "tramadol" if with_tramadol else "serotonergic", order, facts, subject=subject)


FACTS = ("drugs", "ingredients")

RULE = Rule(
    id=RULE_ID,
    variants=dict.fromkeys(("serotonergic", "tramadol"), FACTS),
    applies_to=is_cyclobenzaprine,
    evaluate=evaluate,
    config=RuleConfig,
)
