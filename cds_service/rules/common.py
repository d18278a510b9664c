"""What several rules share: the drug classes they ask about, and the suggestions they make."""

from __future__ import annotations

from cds_service.content.terminology import Terminology
from cds_service.facts.model import Condition, Order, PatientContext
from cds_service.facts.sig import fmt_number
from cds_service.rules import Proposal
from cds_service.rules.actions import delete, update, with_product

START_PRODUCT = "828320"  # cyclobenzaprine hydrochloride 5 MG Oral Tablet (RxNorm SCD)
MAX_PER_DAY = 3.0
_TIMES_A_DAY = {1.0: " once a day", 2.0: " twice a day", 3.0: " three times a day"}


def is_cyclobenzaprine(order: Order, terminology: Terminology) -> bool:
    return terminology.is_medication("cyclobenzaprine", order.drug)


def is_muscle_relaxant(order: Order, terminology: Terminology) -> bool:
    return terminology.is_medication("muscle-relaxant", order.drug)


def remove(order: Order) -> tuple[Proposal, ...]:
    return (Proposal(actions=(delete(order),)),)


def above_start_dose(order: Order, start_dose_mg: float) -> str | None:
    """Why an order exceeds a 5 mg start: "extended-release", "high-dose", or None when it does not."""
    if order.drug is not None and order.drug.extended_release:
        return "extended-release"
    if order.dose_mg is not None and order.dose_mg > start_dose_mg:
        return "high-dose"
    return None


def start_dose_switch(order: Order, terminology: Terminology) -> tuple[tuple[Proposal, ...], dict[str, str]]:
    """The draft switched to one 5 mg tablet, no more than three times a day, and the facts to say so."""
    product = terminology.products[START_PRODUCT]
    per_day = min(order.per_day, MAX_PER_DAY) if order.per_day is not None else None
    facts = {
        "drug": order.drug.name if order.drug else "",
        "dose_mg": fmt_number(order.dose_mg) if order.dose_mg is not None else "unknown",
        "frequency": _TIMES_A_DAY.get(per_day, "") if per_day is not None else "",
    }
    swap = update(with_product(order, product, max_per_day=MAX_PER_DAY))
    return (Proposal(actions=(swap,), recommended=True),), facts


def condition_label(condition: Condition, terminology: Terminology, concept: str) -> str:
    code = terminology.matching(concept, condition.codes) or condition.codes[0]
    return f"{condition.display} ({code.code})"


def since(condition: Condition) -> str:
    return f" since {condition.onset.isoformat()}" if condition.onset else ""


def active_medications(context: PatientContext, order: Order, terminology: Terminology, concept: str) -> list[str]:
    """Names of drugs of ``concept`` the patient takes today or that are ordered with ``order``."""
    names = [
        f"{d.drug.name} (ordered now)"
        for d in context.drafts
        if d.reference != order.reference and terminology.is_medication(concept, d.drug) and d.drug
    ]
    names += [
        f"{c.drug.name} (since {c.start.isoformat()})"
        for c in context.courses
        if c.active_on(context.today) and terminology.is_medication(concept, c.drug)
    ]
    return names
