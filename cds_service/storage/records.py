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


@dataclass(frozen=True)
class Quiet:
    """What stored feedback silences for one patient."""

    # (rule id, order key): cards accepted for this draft order and drug, a short while ago.
    accepted: frozenset[tuple[str, str]] = frozenset()
    # Rules whose warning or info card was overridden for this patient within its snooze period.
    snoozed: frozenset[str] = frozenset()
