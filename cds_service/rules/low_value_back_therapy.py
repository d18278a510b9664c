"""low-value-back-therapy: lumbar supports, TENS and traction do not help back pain.

When a selected ServiceRequest (STU3: ProcedureRequest) or DeviceRequest orders a lumbar or
lumbosacral orthosis, TENS or traction for back pain (the order's reason, or back pain or spasm
on the problem list), then say so and offer to remove that draft. Evidence: [ACP] "lumbar
supports no clear benefit; TENS no different from sham; traction no clear difference".

Silent without a back pain indication, and when the order gives a reason that is not back pain
(the order is for something else: traction for a cervical radiculopathy, TENS for a knee; the
problem list's back pain is no indication for it). Silent after a current vertebral fracture or
a spinal fusion, where a brace may be the treatment, and with any other red flag (cauda equina,
a spinal infection or malignancy: the pain is no nonspecific back pain, which is all [ACP]
speaks of, and a brace may be part of the treatment; the red-flag card speaks of it).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.history import Condition
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import BACK_THERAPIES, back_therapy, remove
from cds_service.rules.condition_said import RED_FLAGS, condition_label, current_fracture

RULE_ID = "low-value-back-therapy"
# An order's own reason that is back pain, acute or chronic, with or without sciatica (TENS is
# ordered for chronic low back pain most of all: its card's evidence is of that). G89.29 (other
# chronic pain) is no back pain alone, as for the chronic-pain rule.
_BACK_REASONS = ("back-pain-spasm", "chronic-low-back-pain", "radicular")
# Conditions after which the card is silent: a fusion, and the red flags but a fracture (current
# only, ``current_fracture``).
_RED_FLAGS = frozenset(("spinal-fusion", *RED_FLAGS)) - {"vertebral-fracture"}


class Config(RuleConfig):
    # A vertebral fracture coded without an initial-encounter 7th character is current (and
    # silences this card) only with an onset this recent.
    current_fracture_days: int = Field(default=90, ge=1, le=3650)


def applies_to(order: Order, terminology: Terminology) -> bool:
    return back_therapy(order, terminology) is not None


def _indication(context: PatientContext, order: Order, terminology: Terminology) -> str | None:
    """Why this is a back pain order: its reason (coded, or a condition it refers to), else, when
    it gives none at all, back pain (acute or chronic, or sciatica) on the problem list. A reason
    given otherwise (in words alone, a code no concept holds) is the order's own: the problem
    list's back pain is no indication for it ("TENS for the right knee" in words was told
    "Indication: Low back pain, on the problem list": a code review)."""
    reason = next(filter(None, (terminology.matching(c, order.reason.codes) for c in _BACK_REASONS)), None)
    if reason is not None:
        return f"{reason.display or 'back pain'} ({reason.code}), the order's reason"
    if found := _back_condition(_reason_conditions(context, order)):
        return f"{condition_label(found[0], terminology, found[1])}, the order's reason"
    if order.reason.given:
        return None
    if found := _back_condition(context.conditions):  # as a reason: sciatica alone on the list was none
        return f"{condition_label(found[0], terminology, found[1])}, on the problem list"
    return None


def _back_condition(conditions: Sequence[Condition]) -> tuple[Condition, str] | None:
    """The first condition of back pain (acute or chronic, or sciatica), with its concept."""
    return next(((c, k) for k in _BACK_REASONS for c in conditions if k in c.concepts), None)


def _reason_conditions(context: PatientContext, order: Order) -> list[Condition]:
    """The problem list's conditions the order refers to as its reason (relative or absolute)."""
    refs = order.reason.references
    return [c for c in context.conditions if any(ref == c.reference or ref.endswith("/" + c.reference) for ref in refs)]


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    therapy = back_therapy(order, terminology)
    if therapy is None:
        return None
    indication = _indication(context, order, terminology)
    if indication is None:
        return None
    for condition in context.conditions:
        if not _RED_FLAGS.isdisjoint(condition.concepts) or current_fracture(
            condition, terminology, context.today, config.current_fracture_days
        ):
            return None
    code = terminology.matching(therapy, order.codes)
    label = (code.display if code and code.display else None) or terminology.code_concepts[therapy].title
    facts = {"order": f"{label} ({code.code})" if code else label, "indication": indication}
    return Finding(RULE_ID, therapy, order, facts, remove(order))


FACTS = ("indication", "order")

RULE = Rule(
    id=RULE_ID,
    variants=dict.fromkeys(BACK_THERAPIES, FACTS),
    applies_to=applies_to,
    evaluate=evaluate,
    config=Config,
)
