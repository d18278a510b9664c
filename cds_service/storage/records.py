"""What the pipeline and storage exchange: the cards issued, and what stored feedback silences."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IssuedCard:
    """What the service remembers of a card it sent, to attribute feedback to its rule."""

    uuid: str
    rule_id: str
    order_key: str
    indicator: str
    # (suggestion uuid, order key once it is accepted) for each dose-change suggestion: accepting
    # one keeps the rule quiet for the draft it leaves, whose drug is no longer the order's.
    keys_after: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Quiet:
    """What stored feedback silences for one patient."""

    # (rule id, order key): cards accepted for this draft order and drug, a short while ago (for
    # an accepted dose change, the drug it changed the draft to).
    accepted: frozenset[tuple[str, str]] = frozenset()
    # Rules whose warning or info card was overridden for this patient within its snooze period.
    snoozed: frozenset[str] = frozenset()
