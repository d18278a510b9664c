"""What the pipeline and storage exchange: the cards issued, and what stored feedback silences."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, TypeVar

from cds_service.content.cards import INDICATORS
from cds_service.security.clients import TrustedClient


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
    # What the card said about which draft (``pipeline.cards.draft_hash``): the same hash at order-sign
    # means the clinician already saw this card for this unchanged draft at order-select.
    draft_hash: str | None = None
    # The trusted client it was issued to (None with authentication off): ``issued_to``.
    owner: Owner | None = None
    # The uuids of the suggestions it offered: feedback may accept these, and no others.
    suggestions: tuple[str, ...] = ()
    # What the card named besides the ordered drug (``Finding.subject``): a snooze of it holds
    # while a new card of its rule names nothing else. None: the rule's cards name nothing else.
    subject: frozenset[str] | None = None


@dataclass(frozen=True)
class IssuedNotice:
    """What the service remembers of a notice it sent (``pipeline.notices``: no rule's card), so
    that feedback naming it is known as feedback on a notice, not on a card lost."""

    uuid: str
    code: str  # its topic code: "partial-history"
    owner: Owner | None = None


@dataclass(frozen=True)
class CardRecord:
    """The record of one hook call's issued cards, as ``Store.record_issued`` stores it."""

    service_id: str
    hook_instance: str
    patient_id: str
    cards: tuple[IssuedCard, ...]
    issued_at: datetime
    notices: tuple[IssuedNotice, ...] = ()

    @property
    def size(self) -> int:
        """The cards and notices it records: what the held buffer bounds and counts."""
        return len(self.cards) + len(self.notices)

    def notice_rows(self) -> list[dict[str, object]]:
        """Its notices as rows of ``issued_notices``: nothing of the patient's."""
        return [
            {
                "uuid": n.uuid,
                "code": n.code,
                "service_id": self.service_id,
                "issued_at": self.issued_at,
                "issuer": n.owner.issuer if n.owner else None,
                "tenant": n.owner.tenant if n.owner else None,
            }
            for n in self.notices
        ]

    def rows(self, pseudonym: Callable[[str], str], patient_key: Callable[[str], str]) -> list[dict[str, object]]:
        """Its cards as rows of ``issued_cards``: the patient, ids and references by their keyed
        hash (``Store.patient_key`` and ``Store.pseudonym``: one hash, two names)."""

        def keyed(value: str | None) -> str | None:
            return pseudonym(value) if value is not None else None

        return [
            {
                "uuid": c.uuid,
                "rule_id": c.rule_id,
                "indicator": c.indicator,
                "service_id": self.service_id,
                "hook_instance": self.hook_instance,
                "patient_key": patient_key(self.patient_id),
                "order_key": pseudonym(c.order_key),
                "keys_after": json.dumps({u: pseudonym(k) for u, k in c.keys_after}) if c.keys_after else None,
                "suggestions": json.dumps(c.suggestions),
                "subject": json.dumps(sorted(c.subject)) if c.subject is not None else None,
                "draft": keyed(c.draft),
                "draft_hash": keyed(c.draft_hash),
                "keyed": 1,
                "issued_at": self.issued_at,
                "issuer": c.owner.issuer if c.owner else None,
                "tenant": c.owner.tenant if c.owner else None,
            }
            for c in self.cards
        ]


def _as_severe(snoozed: str, shown: str) -> bool:
    """Was the snoozed card at least as severe as the card now found (``INDICATORS``, most
    severe first)? A critical card never reaches here: it is never snoozed, nor silenced."""
    return INDICATORS.index(snoozed) <= INDICATORS.index(shown)


def _no_store(_: str) -> str:
    raise AssertionError("a Quiet that silences something compares by the store's keyed hash")


@dataclass(frozen=True)
class Quiet:
    """What stored feedback and today's cards silence for one patient."""

    # (rule id, pseudonym of ``Order.dose_key``) of drafts a dose-change swap of that rule left
    # today (the 5 mg tablet from the older-adult swap): the rule stays quiet for the swapped draft
    # at that dose, and for no other (``swapped_draft``).
    swapped: frozenset[tuple[str, str]] = frozenset()
    # (rule id, the snoozed card's subject, its indicator) of each warning or info card the
    # clinician asked not to see again for this patient ("dont-show-again") within its rule's
    # snooze period; the subject None where the card record keeps none (``snoozes``).
    snoozed: frozenset[tuple[str, frozenset[str] | None, str]] = frozenset()
    # Pseudonyms of the draft hashes of the non-critical cards shown today by an earlier hook
    # (order-select) and not accepted: order-sign does not repeat them for the unchanged draft
    # (``shown_today``).
    shown: frozenset[str] = frozenset()
    # The store's keyed hash (``Store.pseudonym``): a draft's reference, and the draft hash that
    # holds it, are stored by it alone. Only a Quiet that silences nothing may do without it.
    pseudonym: Callable[[str], str] = field(default=_no_store, repr=False)

    def swapped_draft(self, rule_id: str, dose_key: str) -> bool:
        """Did a dose-change swap of ``rule_id`` accepted today leave this draft at this dose (its
        ``Order.dose_key``)?"""
        return bool(self.swapped) and (rule_id, self.pseudonym(dose_key)) in self.swapped

    def snoozes(self, rule_id: str, subject: frozenset[str] | None, indicator: str) -> bool:
        """Is a card of ``rule_id`` naming ``subject`` (``Finding.subject``), of ``indicator``,
        snoozed? Only by a snoozed card of the same indicator or a more severe one: "don't show
        again" said of an info card (a duration left blank) was said of a reminder, not of the
        warning the rule gives for a 90-day supply (an adversarial review); said of a warning, it
        holds for the rule's info cards too. A rule whose cards name nothing else (None), by any
        such snooze of it. Else only by a snoozed card that named all of it, one card: what was
        never named together on one card was never seen together. A card recorded with no subject
        (by the release before) named what cannot be told: it silences none of them, or a snooze
        said of gabapentin would hide the oxycodone after."""
        return any(
            rule == rule_id
            and _as_severe(snoozed_as, indicator)
            and (subject is None or (named is not None and subject <= named))
            for rule, named, snoozed_as in self.snoozed
        )

    def shown_today(self, draft_hash: str | None) -> bool:
        """Did an earlier hook show this card (its ``IssuedCard.draft_hash``) for the unchanged draft today?"""
        return bool(self.shown) and draft_hash is not None and self.pseudonym(draft_hash) in self.shown


@dataclass(frozen=True)
class Owner:
    """The trusted client a card was issued to (or feedback came from): its issuer, and the
    tenant configured for it. Analytics show a client its own cards only (issue 16 #7)."""

    issuer: str
    tenant: str | None = None

    @classmethod
    def of(cls, client: TrustedClient | None) -> Owner | None:
        """The verified caller's owner; None with authentication off (no client is known)."""
        return None if client is None else cls(client.iss, client.tenant)


@dataclass(frozen=True)
class Refused:
    """A feedback item not stored: its index in the batch, why (for the client), and which of the
    reasons it is (for the metrics): ``database`` (it would not take the item), ``contradiction``
    (the item says something else of a moment stored), ``unoffered-suggestion`` (it accepts only
    suggestions its card did not offer)."""

    index: int
    reason: str
    kind: Literal["database", "contradiction", "unoffered-suggestion"]


@dataclass(frozen=True)
class FeedbackReceipt:
    """What became of a feedback batch: how many items were new, and which were refused."""

    stored: int
    refused: tuple[Refused, ...] = ()


_Issued = TypeVar("_Issued", IssuedCard, IssuedNotice)


def issued_to(cards: Iterable[_Issued], client: TrustedClient | None) -> list[_Issued]:
    """The cards (or notices), marked as issued to the verified caller (``client``) for analytics' scope."""
    owner = Owner.of(client)
    return [replace(card, owner=owner) for card in cards] if owner else list(cards)
