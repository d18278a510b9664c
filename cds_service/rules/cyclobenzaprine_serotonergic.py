"""cyclobenzaprine-serotonergic: serotonin syndrome risk with serotonergic drugs.

When cyclobenzaprine is ordered for a patient taking (or being ordered) an SSRI, SNRI,
tricyclic antidepressant, tramadol, bupropion, meperidine or verapamil, then warn and name
the drug. Evidence: [FDA-IR] serotonin syndrome warning.
"""

from __future__ import annotations

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import active_medications, is_cyclobenzaprine

RULE_ID = "cyclobenzaprine-serotonergic"


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: RuleConfig) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    drugs = active_medications(context, order, terminology, "serotonergic")
    if not drugs:
        return None
    return Finding(RULE_ID, "serotonergic", order, {"drugs": "; ".join(drugs)})


RULE = Rule(id=RULE_ID, variants=("serotonergic",), applies_to=is_cyclobenzaprine, evaluate=evaluate)
