"""Feedback items written to the database, one bad item never blocking the rest (issue 16 #5).

A batch (up to 1,000 items) is written in one transaction, as before. Should the database
refuse it for what one item holds (a value it cannot take), the batch is written again item by
item, each in a transaction of its own: the items the database takes are stored, and the
others are named in the receipt with their index, so a client's resend is not refused forever
for one item. Every string is made storable first (``storage.text``: NUL becomes U+FFFD), so
what a client's valid JSON can hold is no longer among those reasons. A database that cannot be
reached is not an item's fault: that error is raised, for the route to answer it.

Clients resend: an item whose card, outcome and ``outcomeTimestamp`` its client has stored
already is the same item, stored once. Another client's item of that moment is its own, stored
(``schema.feedback``'s key, version 14: it was taken for a resend, one client's feedback masking
another's). One of the sender's that says something else of its moment (another reason, another
comment, other suggestions) is not a resend, and a correction must not silently lose to what
came first: it is refused, naming the fields that differ, and what is stored stays. An item
accepting only suggestions its card did not offer (a client's bug: the id is the suggestion's
``uuid``) is refused too, naming the field, rather than counted as a click on nothing
(``storage.offered``: the rule, which whatever counts acceptances applies again to what was
stored unchecked). Every kind of refusal, and why: ``storage.feedback_refusals``. An item about
the sender's card is stored under the service that issued it, whichever service's feedback it
was sent to: snoozes and reports join feedback to its card by the card's uuid, not by service.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import DataError, IntegrityError

from cds_service.errors import shown_url
from cds_service.protocol.feedback import FeedbackItem
from cds_service.storage import feedback_refusals as refusals
from cds_service.storage.early_feedback import still_unknown
from cds_service.storage.notices import notices_named
from cds_service.storage.offered import offered
from cds_service.storage.records import FeedbackReceipt, Owner, Refused
from cds_service.storage.schema import feedback, issued_cards
from cds_service.storage.text import card_id, storable, storable_row, suggestion_id
from cds_service.tracebacks import database_error


class FeedbackStore(Protocol):
    """What writing feedback asks of ``storage.store.Store``, which calls this module: named
    here so that the import runs one way."""

    def writing(self, *, durable: bool = False) -> AbstractContextManager[Connection]: ...

    def insert(self, table: Table) -> Any: ...


log = logging.getLogger(__name__)

# What the database says about a value, not about itself: the item's fault, not the batch's.
ITEM_ERRORS = (DataError, IntegrityError)


@dataclass
class _Met:
    """What writing feedback met: the items refused, and what an operator should hear of
    (``_say``), gathered so that it is said once, when the items are stored."""

    refused: list[Refused] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)  # items naming cards this service has no record of
    unreadable: int = 0  # items whose card's stored suggestions could not be read (taken as sent)
    foreign: int = 0  # items naming another client's card: stored, about no card of the sender's
    replaced: set[str] = field(default_factory=set)  # columns where NUL or a lone surrogate was replaced

    def add(self, other: _Met) -> None:
        self.refused += other.refused
        self.unknown += other.unknown
        self.unreadable += other.unreadable
        self.foreign += other.foreign
        self.replaced |= other.replaced


def record_feedback(
    store: FeedbackStore, *, service_id: str, items: Sequence[FeedbackItem], now: datetime, owner: Owner | None = None
) -> FeedbackReceipt:
    """Store each item once: how many were new, and which were refused, and why."""
    try:
        with store.writing(durable=True) as connection:
            stored, met = _write(store, connection, service_id, items, now, owner, first=0)
        met.unknown = still_unknown(store.writing, items, met.unknown)
        _say(service_id, owner, met)
        return FeedbackReceipt(stored=stored, refused=tuple(met.refused))
    except ITEM_ERRORS as error:
        log.warning(
            "feedback batch of %d item(s) refused whole (%s); storing it item by item",
            len(items),
            database_error(error),
        )
    stored, met = 0, _Met()
    try:
        for index, item in enumerate(items):
            try:
                with store.writing(durable=True) as connection:
                    new, item_met = _write(store, connection, service_id, [item], now, owner, first=index)
                stored += new
                met.add(item_met)
            except ITEM_ERRORS as error:
                log.warning("feedback item %d refused by the database (%s)", index, database_error(error))
                met.refused.append(Refused(index, refusals.REFUSED_REASON, "database"))
        met.unknown = still_unknown(store.writing, items, met.unknown)
    finally:  # what the items stored so far met, even should the database go away meanwhile
        _say(service_id, owner, met)
    return FeedbackReceipt(stored=stored, refused=tuple(met.refused))


def _say(service_id: str, owner: Owner | None, met: _Met) -> None:
    """What a batch met that an operator should hear of, said once, when it is stored: not in a
    batch the database refused whole, whose items are written again one by one. Counts, the
    service, the client and columns' names, never ids or values (a client's own, built from
    anything)."""
    if met.replaced:
        log.info("feedback: NUL or lone surrogates replaced by U+FFFD in %s", ", ".join(sorted(met.replaced)))
    if met.unknown:
        log.warning(
            "feedback: %d item(s) name cards this service has no record of (first: item %d)",
            len(met.unknown),
            met.unknown[0],
        )
    if met.unreadable:
        log.warning(
            "feedback: %d item(s) name cards whose stored suggestions could not be read; taken as sent", met.unreadable
        )
    client = shown_url(owner.issuer) if owner and owner.issuer else "an unauthenticated client"
    if unoffered := sum(refusal.kind == "unoffered-suggestion" for refusal in met.refused):
        log.warning(
            "feedback %s: %d item(s) from %s accept only suggestions their card did not offer",
            service_id,
            unoffered,
            client,
        )
    if met.foreign:  # a client's bug, or one trying another's uuids: stored, and counted as unmatched
        log.warning(
            "feedback %s: %d item(s) from %s name cards issued to another client", service_id, met.foreign, client
        )
    if contradicting := sum(refusal.kind == "contradiction" for refusal in met.refused):
        # The fields' names are in the receipt, never their values (a comment may say anything).
        log.warning("feedback: %d item(s) contradict feedback stored for the same moment", contradicting)


def _write(
    store: FeedbackStore,
    connection: Connection,
    service_id: str,
    items: Sequence[FeedbackItem],
    now: datetime,
    owner: Owner | None,
    *,
    first: int,
) -> tuple[int, _Met]:
    """Insert the items (``first`` is the first one's index in the batch): how many were new,
    and what they met: the items refused (those accepting only suggestions their card did not
    offer, not inserted; those contradicting what is stored of their moment), those naming a card
    this service has no record of (stored as sent), and the rest ``_say`` tells. An item about the
    sender's card is stored with its rule, patient and service (the other service's, when sent to
    this one's feedback). An item about another client's card is about none of the sender's: it
    is stored with neither the card's rule nor its patient, or its snooze would be that patient's
    (``schema.from_its_client``)."""
    cards = _cards(connection, {storable(card_id(item.card)) for item in items})
    rows, unoffered, met = [], set(), _Met()
    for index, item in enumerate(items, start=first):
        row, changed = storable_row(_row(item, service_id, now, owner))
        met.replaced.update(changed)
        card = cards.get(row["card_uuid"])
        if card is not None and (card.issuer, card.tenant) != (row["issuer"], row["tenant"]):
            met.foreign += 1  # about no card of the sender's (``schema.from_its_client``)
            card = None
        elif card is None:
            met.unknown.append(index)
        else:
            row["service_id"] = card.service_id  # the card's, whichever service's feedback it was sent to
            named = offered([s.id for s in item.acceptedSuggestions or ()], card.suggestions)
            if named is None:
                met.unreadable += 1
            elif not named:
                unoffered.add(index)
        row |= {"rule_id": card.rule_id if card else None, "patient_key": card.patient_key if card else None}
        rows.append((index, row))
    met.refused = refusals.not_offered(connection, [(i, r) for i, r in rows if i in unoffered]) if unoffered else []
    dropped = {refusal.index for refusal in met.refused}
    rows = [(index, row) for index, row in rows if index not in dropped]
    if not rows:
        return 0, met
    # RETURNING counts what was new on every backend (executemany rowcounts are not portable).
    statement = store.insert(feedback).on_conflict_do_nothing().returning(feedback.c.id)
    new = len(connection.execute(statement, [row for _, row in rows]).all())
    # Every item stored (feedback is mostly new): none met another of its moment, nothing to compare.
    if new < len(rows):
        met.refused = sorted([*met.refused, *refusals.contradicting(connection, rows)], key=lambda r: r.index)
    return new, met


def _cards(connection: Connection, uuids: set[str]) -> dict[str, Any]:
    """The issued cards the items name, by uuid: their service, rule, patient, suggestions and client; and
    the notices they name (``storage.notices``), looked for only when a card is not on record."""
    query = select(
        issued_cards.c.uuid,
        issued_cards.c.service_id,
        issued_cards.c.rule_id,
        issued_cards.c.patient_key,
        issued_cards.c.suggestions,
        issued_cards.c.issuer,
        issued_cards.c.tenant,
    )
    cards = {row.uuid: row for row in connection.execute(query.where(issued_cards.c.uuid.in_(uuids)))}
    return cards | notices_named(connection, uuids - cards.keys()) if len(cards) < len(uuids) else cards


def _row(item: FeedbackItem, service_id: str, now: datetime, owner: Owner | None) -> dict[str, Any]:
    reason = item.overrideReason.reason if item.overrideReason else None
    accepted = [suggestion_id(s.id) for s in item.acceptedSuggestions or ()]  # a UUID in lower case
    return {
        "card_uuid": card_id(item.card),
        "card_sent": item.card if card_id(item.card) != item.card else None,  # a UUID's case, kept
        "service_id": service_id,
        "outcome": item.outcome,
        "accepted_suggestions": json.dumps(accepted) if accepted else None,
        "override_system": reason.system if reason else None,
        "override_code": reason.code if reason else None,
        "override_display": reason.display if reason else None,
        "user_comment": item.overrideReason.userComment if item.overrideReason else None,
        "outcome_timestamp": item.outcomeTimestamp,
        "received_at": now,
        "issuer": owner.issuer if owner else None,
        "tenant": owner.tenant if owner else None,
    }
