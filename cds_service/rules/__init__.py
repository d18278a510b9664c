"""The rules: one module per rule id, each a pure function of the patient context.

A rule answers "does this order deserve this card, and with which facts?" and proposes the
suggestion's FHIR actions. The words of the card live in ``cards/<rule-id>.toml``; the two are
joined by the rule id, which is also the card's ``source.topic.code``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cds_service.context import Order, PatientContext
from cds_service.terminology import Terminology


@dataclass(frozen=True)
class Thresholds:
    """The numbers of clinical-rules.md §2, in one place so sites can tune them."""

    duration_limit_days: int = 21
    cumulative_window_days: int = 30
    hepatic_start_dose_mg: float = 5.0
    prior_course_min_days: int = 14
    prior_course_max_days: int = 90
    chronic_onset_days: int = 28
    imaging_lookback_days: int = 90


@dataclass(frozen=True)
class Proposal:
    """A suggestion before it has words: its FHIR actions, and whether it is the one we recommend."""

    actions: tuple[dict[str, Any], ...]
    recommended: bool = False


@dataclass(frozen=True)
class Finding:
    """A rule firing for one order: which card variant, with which facts and suggestions."""

    rule_id: str
    variant: str
    order: Order
    facts: dict[str, str] = field(default_factory=dict)
    proposals: tuple[Proposal, ...] = ()

    @property
    def deletes_order(self) -> bool:
        return any(
            action["type"] == "delete" and action.get("resourceId") == self.order.reference
            for proposal in self.proposals
            for action in proposal.actions
        )


@dataclass(frozen=True)
class Rule:
    id: str
    # The card variants (keys in cards/<id>.toml) the rule can produce; checked at start-up.
    variants: tuple[str, ...]
    # Cheap check on an order alone: if no order passes any rule's, the call has nothing to evaluate.
    applies_to: Callable[[Order, Terminology], bool]
    evaluate: Callable[[PatientContext, Order, Terminology, Thresholds], Finding | None]
    # Rules about the patient rather than the order give one card per call, not one per order.
    once_per_call: bool = False


def all_rules() -> tuple[Rule, ...]:
    from cds_service.rules import (
        cyclobenzaprine_duration,
        cyclobenzaprine_hepatic_impairment,
        refractory_spasm_imaging,
    )

    return (
        cyclobenzaprine_hepatic_impairment.RULE,
        cyclobenzaprine_duration.RULE,
        refractory_spasm_imaging.RULE,
    )
