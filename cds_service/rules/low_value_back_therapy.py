"""low-value-back-therapy: lumbar supports, TENS and traction do not help back pain.

When a ServiceRequest or DeviceRequest for a lumbar or lumbosacral orthosis, TENS or traction
is under review, then say so and offer to remove that draft. Evidence: [ACP] "lumbar supports
no clear benefit; TENS no different from sham; traction no clear difference".
"""

from __future__ import annotations

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import remove

RULE_ID = "low-value-back-therapy"
THERAPIES = ("lumbar-orthosis", "tens", "traction")


def _therapy(order: Order, terminology: Terminology) -> str | None:
    if not order.reference.startswith(("ServiceRequest/", "DeviceRequest/")):
        return None
    return next((t for t in THERAPIES if terminology.in_concept(t, order.codes)), None)


def applies_to(order: Order, terminology: Terminology) -> bool:
    return _therapy(order, terminology) is not None


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: RuleConfig) -> Finding | None:
    therapy = _therapy(order, terminology)
    if therapy is None:
        return None
    code = terminology.matching(therapy, order.codes)
    label = (code.display if code and code.display else None) or terminology.code_concepts[therapy].title
    facts = {"order": f"{label} ({code.code})" if code else label}
    return Finding(RULE_ID, therapy, order, facts, remove(order))


RULE = Rule(
    id=RULE_ID,
    variants=THERAPIES,
    applies_to=applies_to,
    evaluate=evaluate,
    needs_patient_data=False,
)
