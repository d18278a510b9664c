"""Feedback that reached the database before its card's record, joined to it when the record comes.

A feedback item is stored with its card's rule and patient (``storage.feedback_writer``): the
quiet read finds a patient's snoozes by them. A card's record is written behind the answer
(``storage.writer``), and on PostgreSQL the feedback may reach another process first: stored
with neither, its snooze was lost (an operator's review: 9 of 10 sent at once). Each side looks
for the other after its own commit: the card writer for feedback about the cards it has just
written, the feedback writer for the cards its unknown items name (a resend's too). Whichever
commits last sees what the other committed, so one of the two joins them (under READ COMMITTED,
each statement sees every commit before it). By card, never by time: the hosts' clocks need not
agree. The update is announced like any change to feedback (``storage.changes``), and the
caller forgets what this process kept.

The join gives the card's rule, patient and service (an item sent to the other service's
feedback is the issuing service's, as at arrival) only: an acceptance is not checked against the
suggestions the card offered here, as it is at arrival. The client was told it is stored, too
late to refuse, and the item is kept as sent; what counts acceptances applies the rule when it reads them
(``storage.offered``), which needs no column to mark it. Another client's item about a card is
never joined to it (``schema.from_its_client``): it is about no card of its sender's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager

from sqlalchemy import Connection, update
from sqlalchemy.exc import SQLAlchemyError

from cds_service.protocol.feedback import FeedbackItem
from cds_service.storage.notices import notices_named
from cds_service.storage.schema import feedback, from_its_client, issued_cards
from cds_service.storage.text import card_id, storable
from cds_service.tracebacks import database_error

log = logging.getLogger(__name__)

Writing = Callable[[], AbstractContextManager[Connection]]
# Cards a statement names, within every backend's bound parameters.
_CARDS_PER_STATEMENT = 500


def join_early_feedback(connection: Connection, cards: Collection[str]) -> dict[str, str]:
    """Give the feedback about ``cards`` stored without its card the rule, patient and service of
    the card's record, now there: the cards joined, each to its patient's key. Feedback naming no
    card on record, or one issued to another client, stays as it is."""
    joined = {}
    for chunk in _chunks(cards):
        statement = (
            update(feedback)
            .where(
                feedback.c.patient_key.is_(None),
                feedback.c.card_uuid.in_(chunk),
                feedback.c.card_uuid == issued_cards.c.uuid,
                from_its_client(issued_cards),  # another client's item is about no card of its own
            )
            .values(
                rule_id=issued_cards.c.rule_id,
                patient_key=issued_cards.c.patient_key,
                service_id=issued_cards.c.service_id,  # the card's, whichever service's feedback it was sent to
            )
            .returning(feedback.c.card_uuid, feedback.c.patient_key)
        )
        joined.update({row.card_uuid: row.patient_key for row in connection.execute(statement)})
    return joined


# The card writer's look, in the driver's SQL: SQLAlchemy's expanding IN renders and keys the
# statement each round, for a query that almost always finds nothing. PostgreSQL's (an array).
_EARLY = f"SELECT card_uuid FROM {feedback.name} WHERE patient_key IS NULL AND card_uuid = ANY(%s)"


def feedback_before(connection: Connection, cards: Collection[str]) -> set[str]:
    """Feedback about ``cards`` stored before their records, joined: the keys of its patients
    (PostgreSQL: one process on SQLite waits for its own cards). Asked on the card writer's
    connection just after its commit (statements of their own, each seeing every commit before
    it), of the index first: there is almost never any, and an update every round cost a
    transaction and its trigger (a round's time doubled). A round trip more a round (~0.4 ms on
    loopback). A database error is logged, never the round's: its cards are stored."""
    try:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")  # no BEGIN and COMMIT: one round trip
        early = {row[0] for row in autocommit.exec_driver_sql(_EARLY, (list(cards),))}
        joined = join_early_feedback(autocommit, early) if early else {}  # one statement, atomic alone
    except SQLAlchemyError as error:
        log.warning("feedback stored before its card's record not looked for (%s)", database_error(error))
        return set()
    if joined:
        log.info("feedback stored before its card's record: joined to it, for %d patient(s)", len(set(joined.values())))
    return set(joined.values())


def still_unknown(writing: Writing, items: Sequence[FeedbackItem], unknown: list[int]) -> list[int]:
    """Of the items (by index) just stored, or resent, naming a card with no record: those whose
    card has none yet. The others' records, written meanwhile by another process, are joined
    to them; a notice's record needs no join (feedback on one names no rule or patient, and the
    report finds it by its uuid). A database gone meanwhile leaves them to the card writer's
    look (the feedback is stored)."""
    if not unknown:
        return unknown
    try:
        with writing() as connection:
            cards = {storable(card_id(items[index].card)) for index in unknown}
            joined = set(join_early_feedback(connection, cards))
            known = joined | notices_named(connection, cards - joined).keys()
    except SQLAlchemyError as error:
        log.warning("feedback: cards with no record not looked up again (%s)", database_error(error))
        return unknown
    return [index for index in unknown if storable(card_id(items[index].card)) not in known]


def _chunks(cards: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(cards)
    for start in range(0, len(ordered), _CARDS_PER_STATEMENT):
        yield ordered[start : start + _CARDS_PER_STATEMENT]
