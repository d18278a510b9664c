"""Feedback that reached the database before its card's record, joined to it when the record comes.

A feedback item is stored with its card's rule and patient (``storage.feedback_writer``): the
quiet read finds a patient's snoozes by them. A card's record is written behind the answer
(``storage.writer``), and on PostgreSQL the feedback may reach another process first: stored
with neither, its snooze was lost (an operator's review: 9 of 10 sent at once). Each side looks
for the other after its own commit: the card writer for feedback stored without a card since its
cards went out, the feedback writer for the cards its unknown items name. Whichever commits
last sees what the other committed, so one of the two joins them (under READ COMMITTED, each
statement sees every commit before it). The update is announced like any change to feedback
(``storage.changes``), and the caller forgets what this process kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from sqlalchemy import Connection, update
from sqlalchemy.exc import OperationalError

from cds_service.protocol.feedback import FeedbackItem
from cds_service.storage.schema import feedback, issued_cards
from cds_service.storage.text import storable
from cds_service.tracebacks import database_error

log = logging.getLogger(__name__)

# Feedback is stamped by the receiving process's clock, a card by the issuing one's, on hosts of
# their own: the card writer looks back this much further than its cards' time.
CLOCK_SKEW = timedelta(minutes=5)


def join_early_feedback(
    connection: Connection, *, received_since: datetime, cards: Collection[str] | None = None
) -> dict[str, str]:
    """Give feedback stored without its card (received at or after ``received_since``; of
    ``cards`` alone, if given) the rule and patient of the card's record, now there: the cards
    joined, each to its patient's key. Feedback naming no card on record stays as it is."""
    statement = (
        update(feedback)
        .where(
            feedback.c.patient_key.is_(None),
            feedback.c.received_at >= received_since,
            feedback.c.card_uuid == issued_cards.c.uuid,
        )
        .values(rule_id=issued_cards.c.rule_id, patient_key=issued_cards.c.patient_key)
        .returning(feedback.c.card_uuid, feedback.c.patient_key)
    )
    if cards is not None:
        statement = statement.where(feedback.c.card_uuid.in_(cards))
    return {row.card_uuid: row.patient_key for row in connection.execute(statement)}


def still_unknown(
    writing: Callable[[], AbstractContextManager[Connection]],
    items: Sequence[FeedbackItem],
    unknown: list[int],
    received_at: datetime,
) -> list[int]:
    """Of the items (by index) just stored naming a card with no record, those whose card has
    none yet: the others' records, written meanwhile by another process, are joined to them. A
    database gone meanwhile leaves them to the card writer's look (the feedback is stored)."""
    if not unknown:
        return unknown
    try:
        with writing() as connection:
            cards = {storable(items[index].card) for index in unknown}
            joined = join_early_feedback(connection, received_since=received_at, cards=cards)
    except OperationalError as error:
        log.warning("feedback: cards with no record not looked up again (%s)", database_error(error))
        return unknown
    return [index for index in unknown if storable(items[index].card) not in joined]
