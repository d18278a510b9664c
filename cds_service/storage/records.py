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
    # The draft order's reference: one alert is one rule for one patient's draft on one day.
    draft: str | None = None
    # What the card said about which draft (``pipeline.evaluate``): the same hash at order-sign
    # means the clinician already saw this card for this unchanged draft at order-select.
    draft_hash: str | None = None


@dataclass(frozen=True)
class Quiet:
    """What stored feedback and today's cards silence for one patient."""

    # (rule id, order key) of drafts a dose-change swap of that rule left today (the 5 mg tablet
    # from the older-adult swap): the rule stays quiet for the swapped draft, and for no other.
    swapped: frozenset[tuple[str, str]] = frozenset()
    # Rules whose warning or info card the clinician asked not to see again for this patient
    # ("dont-show-again") within the rule's snooze period.
    snoozed: frozenset[str] = frozenset()
    # Draft hashes of the non-critical cards shown today by an earlier hook (order-select) and
    # not accepted: order-sign does not repeat them for the unchanged draft.
    shown: frozenset[str] = frozenset()
