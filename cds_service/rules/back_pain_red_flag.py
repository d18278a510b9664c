"""back-pain-red-flag: a muscle relaxant for a patient with serious spinal pathology.

When a muscle relaxant is ordered and the problem list holds a red flag (cauda equina
syndrome, a spinal infection, a current vertebral fracture, bone metastasis or myeloma), the
back pain is not simple spasm: imaging and specialist care are indicated if not done. So too
when traction or TENS is ordered (a lumbar support: for a cauda equina syndrome alone, as a brace
may treat the others), which ``low-value-back-therapy`` is silent for with a red flag. A cauda
equina syndrome that began in the last 30 days is an emergency: critical card, with a lumbar
MRI to order STAT, unless one is done or under way since the onset (not merely booked for a
later day) or ordered in the same session.
Evidence: [ACP-IMG] "imaging with severe or progressive neurologic deficits or suspected
serious underlying conditions".

The card speaks about the patient (one per call) and makes the MRI card and the heat-and-
exercise reminder redundant (clinical specification §2, card volume). It deletes nothing: the
relaxant may still ease the spasm; what matters is that the cause is worked up.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.history import Condition
from cds_service.facts.model import Order, PatientContext, Procedure
from cds_service.rules import Finding, Proposal, Rule, RuleConfig
from cds_service.rules.actions import MRI_LUMBAR, create, service_request
from cds_service.rules.common import back_therapy, is_muscle_relaxant
from cds_service.rules.condition_said import (
    RED_FLAGS,
    condition_subject,
    current_fracture,
    days_since_onset,
    onset_shown,
)

RULE_ID = "back-pain-red-flag"
# Statuses of an imaging order on record that is not under way: paused, or never signed.
_NOT_UNDER_WAY = frozenset(("on-hold", "draft"))


class Config(RuleConfig):
    # A cauda equina syndrome with onset this recent is an emergency (critical card, MRI).
    emergency_days: int = Field(default=30, ge=1, le=365)
    # A vertebral fracture coded without an initial-encounter 7th character is current only
    # with an onset this recent.
    current_fracture_days: int = Field(default=90, ge=1, le=3650)


def red_flags(context: PatientContext, terminology: Terminology, config: Config) -> list[tuple[str, Condition]]:
    """The patient's active red-flag conditions with their concept, most urgent first."""
    found = []
    for concept in RED_FLAGS:
        for condition in context.conditions:
            if concept not in condition.concepts:
                continue
            if concept == "vertebral-fracture" and not current_fracture(
                condition, terminology, context.today, config.current_fracture_days
            ):
                continue
            found.append((concept, condition))
    return found


def _line(condition: Condition, code: str, today: date) -> str:
    if condition.onset is None:
        return f"- **{condition.display}** ({code}), onset not recorded"
    return f"- **{condition.display}** ({code}) since {onset_shown(condition)}, {days_since_onset(condition, today)}"


def applies_to(order: Order, terminology: Terminology) -> bool:
    return is_muscle_relaxant(order, terminology) or back_therapy(order, terminology) is not None


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    therapy = back_therapy(order, terminology)
    if therapy is None and not is_muscle_relaxant(order, terminology):
        return None
    flags = red_flags(context, terminology, config)
    if therapy == "lumbar-orthosis":  # a brace may treat a fracture, an infection, a malignancy
        flags = [(concept, condition) for concept, condition in flags if concept == "cauda-equina"]
    if not flags:
        return None
    today = context.today
    lines = []
    for concept, condition in flags:
        code = terminology.matching(concept, condition.codes) or condition.codes[0]
        lines.append(_line(condition, code.code, today))
    facts = {"conditions": "\n".join(lines), **_TREATMENT[therapy]}
    subject = condition_subject(flags, terminology)
    since = today - timedelta(days=config.emergency_days)
    emergency = next((c for concept, c in flags if concept == "cauda-equina" and c.onset_since(since)), None)
    if emergency is None:
        return Finding(RULE_ID, "serious-pathology", order, facts, subject=subject)
    if _imaged_since(context, terminology, emergency):
        return Finding(RULE_ID, "emergency", order, facts, subject=subject)  # the card's "unless already done" applies
    reason = (emergency.reference, emergency.display)
    mri = service_request(patient_id=context.patient_id, code=MRI_LUMBAR, reason=reason, order=order, stat=True)
    proposals = (Proposal(actions=(create(mri),), recommended=True),)
    return Finding(RULE_ID, "emergency", order, facts, proposals, subject=subject)


def _imaged_since(context: PatientContext, terminology: Terminology, condition: Condition) -> bool:
    """A lumbar MRI ordered in this session, or on record that could have informed care since the
    onset (``_informs_since``): no STAT MRI is offered again (a post-operative patient was offered
    a repeat one: a pharmacist's review; [ACP-IMG] repeats imaging only for new or changed
    symptoms). An MRI, not a CT: a plain CT cannot rule the syndrome out (the clinical review)."""
    onset = condition.onset_latest or condition.onset  # a month alone: its last day, or the MRI may precede it
    return any(
        terminology.in_concept("lumbar-mri", p.codes) and _informs_since(p, onset, context.today)
        for p in context.procedures
    )


def _informs_since(study: Procedure, onset: date | None, today: date) -> bool:
    """Is this study done, or under way, since the onset? Ordered in this session: yes (the
    clinician is ordering it now). Otherwise the day it was done or is booked for decides, when
    the record gives one: from the onset to today, yes, whenever it was ordered (images taken
    after the onset show the syndrome); after today, no: a booking weeks ahead is no emergency
    MRI (a routine MRI booked for next year silenced the STAT one: QA round 2). With no such day,
    an order placed since the onset stands for it (done or being done for this syndrome) when it
    is done or urgent (stat, asap, urgent): a routine one still open, no day booked, is no
    emergency MRI either (the clinical review); one ordered before, or with no date at all, may
    be of an older complaint. An order on hold, or a draft in the record that no one signed, is
    not under way; a cancelled, revoked or entered-in-error one was never read (``facts.patient``)."""
    if study.drafted:
        return True
    if onset is None or study.status in _NOT_UNDER_WAY:
        return False
    if study.occurs is None and study.status != "completed" and not study.urgent:
        return False  # no day done or booked, not done, not urgent: whatever its status (unknown, failed)
    day = study.occurs if study.occurs is not None else study.ordered
    return day is not None and onset <= day <= today


# What the order is, as the card says it does not treat the cause: a relaxant (the
# specification's trigger), or a therapy of little value for back pain (``low-value-back-therapy``,
# silent with a red flag: its "prefer heat, exercise and massage" is no advice for one, and a
# traction in a recent cauda equina went with no card at all: the clinical review).
_TREATMENT: dict[str | None, dict[str, str]] = {
    None: {"treatment": "a muscle relaxant", "cause": "a relaxant can ease the spasm but does not treat the cause"},
    "traction": {"treatment": "traction", "cause": "traction does not treat the cause"},
    "tens": {"treatment": "TENS", "cause": "TENS does not treat the cause"},
    "lumbar-orthosis": {"treatment": "a lumbar support", "cause": "a lumbar support does not treat the cause"},
}
FACTS = ("cause", "conditions", "treatment")

RULE = Rule(
    id=RULE_ID,
    variants=dict.fromkeys(("emergency", "serious-pathology"), FACTS),
    applies_to=applies_to,
    evaluate=evaluate,
    config=Config,
    once_per_call=True,
    subsumes=frozenset({"refractory-spasm-imaging", "nonpharmacologic-first-line"}),
)
