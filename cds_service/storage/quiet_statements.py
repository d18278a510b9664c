"""The statements of the quiet read (``storage.quiet.read_quiet``): what may quiet a patient's
cards, and the cards shown the patient today.

Each reads only what can change the answer, through an index of it: the items that may quiet a
card (``schema.quieting``: acceptances and "don't show again"), each card's latest item, a card's
acceptances. However many other items the patient's cards have, the read looks at none of them:
200,000 overrides of one card, all with other reasons, made each read of its patient take 2 s,
on SQLite on the event loop, where every other call waited as long (an adversarial review).
Many items that may quiet a card (200,000 "don't show again" of one) are each looked at once, and
a card's acceptances alike are one row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, Text, and_, bindparam, case, cast, literal_column, null, select, union_all

from cds_service.storage.schema import feedback, from_its_client, issued_cards, quieting


# Built once, with bound parameters: SQLAlchemy then skips building the statements and their
# cache keys on each call (a third of the read's cost).
def _owned(statement: Select[Any], owned: bool) -> Select[Any]:
    """``statement`` for one client's cards only (bound ``issuer`` and ``tenant``), as
    ``reporting.queries.owned_by`` scopes analytics; as is for ``owned`` False."""
    if not owned:
        return statement
    return statement.where(
        issued_cards.c.issuer == bindparam("issuer"),
        issued_cards.c.tenant.is_not_distinct_from(bindparam("tenant", type_=Text)),
    )


def _with_and_without_owner(statement: Select[Any]) -> dict[bool, Select[Any]]:
    return {owned: _owned(statement, owned) for owned in (False, True)}


def _none(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """No value, in ``column``'s place and of its type (PostgreSQL takes a bare NULL for text)."""
    return cast(null(), column.type).label(column.name)


# A card's latest item (the latest ``outcomeTimestamp``; of one moment, the one stored last): what
# the clinician chose, and what ``read_quiet`` reads a snooze from.
LATEST = (
    feedback.c.issuer,
    feedback.c.tenant,
    feedback.c.patient_key,
    feedback.c.outcome,
    feedback.c.override_code,
    feedback.c.override_system,
    feedback.c.received_at,
)
_ACCEPTED = (issued_cards.c.keys_after, issued_cards.c.keyed, feedback.c.accepted_suggestions)


def _snoozes(owned: bool) -> Select[Any]:
    """A row per card of the patient's named by a "don't show again" received since ``since``
    (of any client), with the card's latest item of any client: ``read_quiet`` tells whether it
    is the card's client's, and a snooze (``LATEST_OF_ITS_CLIENT`` when it is another's).

    Per card, not per item: the cards named (``ix_feedback_quieting``), then each card's latest
    item, one look up ``ix_feedback_card_time``. Each item looking for a later one of its card read
    (through ``feedback_once``, its outcome before its time) every earlier one: 200,000 "don't
    show again" of one card took hours to read. Not the latest of the card's client's own in the
    statement: PostgreSQL's planner took that for a rare few of the card's items, and read them
    all to sort them."""
    said = feedback.alias("said")
    # DISTINCT, here and below, keeps each a step of its own: the planners merged the first into
    # a look at every card's overrides, the second into the join after it, where the latest item
    # was looked for once per item again.
    named = (
        select(said.c.card_uuid)
        .where(
            said.c.patient_key == bindparam("patient"),
            said.c.outcome == "overridden",
            said.c.received_at >= bindparam("since"),
            quieting(said),
        )
        .distinct()
        .subquery("named")
    )
    later = feedback.alias("later")
    latest = (
        select(later.c.id)
        .where(later.c.card_uuid == issued_cards.c.uuid)
        .order_by(later.c.outcome_timestamp.desc(), later.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    card = (issued_cards.c.rule_id, issued_cards.c.indicator, issued_cards.c.subject)
    cards = _owned(
        select(
            *card,
            issued_cards.c.uuid.label("card"),
            issued_cards.c.issuer.label("card_issuer"),
            issued_cards.c.tenant.label("card_tenant"),
            latest.label("latest"),
        )
        .join_from(named, issued_cards, issued_cards.c.uuid == named.c.card_uuid)
        .distinct(),
        owned,
    ).subquery("cards")
    return select(
        literal_column("'snooze'").label("kind"),
        *(cards.c[name] for name in ("rule_id", "indicator", "subject", "card", "card_issuer", "card_tenant")),
        *LATEST,
        *map(_none, _ACCEPTED),
    ).join_from(cards, feedback, feedback.c.id == cards.c.latest)


def _swaps(owned: bool) -> Select[Any]:
    """The suggestions accepted today of the patient's cards that offered a dose change (their
    ``keys_after``: another card's acceptance swaps nothing); the acceptances of a card alike
    are one row. Only the card's client's (``from_its_client``)."""
    return _owned(
        select(
            literal_column("'swap'").label("kind"),
            issued_cards.c.rule_id,
            *map(_none, (issued_cards.c.indicator, issued_cards.c.subject)),
            *map(_none, (issued_cards.c.uuid, issued_cards.c.issuer, issued_cards.c.tenant)),  # the card's
            *map(_none, LATEST),
            *_ACCEPTED,
        )
        .distinct()
        .join(feedback, and_(feedback.c.card_uuid == issued_cards.c.uuid, from_its_client(issued_cards)))
        .where(
            feedback.c.patient_key == bindparam("patient"),
            feedback.c.outcome == "accepted",
            feedback.c.received_at >= bindparam("today"),
            quieting(feedback),
            issued_cards.c.keys_after.is_not(None),
        ),
        owned,
    )


# What may quiet the patient's cards (``read_quiet``): one statement, one round trip on
# PostgreSQL. Only the items that may (``schema.quieting``), through the index of them: however
# many others the patient's cards have (200,000 overrides of one card made each read take 2 s,
# an adversarial review), the read looks at none of them.
FEEDBACK_OF_PATIENT = {owned: union_all(_snoozes(owned), _swaps(owned)) for owned in (False, True)}
# The latest item of a card's client's (bound ``card``, ``issuer`` and ``tenant``) about it, when
# another client's item came last.
LATEST_OF_ITS_CLIENT = (
    select(*LATEST)
    .where(
        feedback.c.card_uuid == bindparam("card"),
        feedback.c.issuer.is_not_distinct_from(bindparam("issuer", type_=Text)),
        feedback.c.tenant.is_not_distinct_from(bindparam("tenant", type_=Text)),
    )
    .order_by(feedback.c.outcome_timestamp.desc(), feedback.c.id.desc())
    .limit(1)
)
SHOWN_TO_PATIENT = _with_and_without_owner(
    select(
        issued_cards.c.draft_hash,
        issued_cards.c.indicator,
        issued_cards.c.keyed,
        feedback.c.outcome,
        # What an acceptance is checked against: only an acceptance's (most cards have none).
        case((feedback.c.outcome == "accepted", issued_cards.c.suggestions)).label("suggestions"),
        case((feedback.c.outcome == "accepted", feedback.c.accepted_suggestions)).label("accepted_suggestions"),
    )
    .distinct()  # a card's acceptances alike are one row
    # Its acceptances alone (through ``feedback_once``, the card's then its outcome): 200,000
    # overrides of a card shown today were as many rows of order-sign's read (an adversarial review).
    .outerjoin(
        feedback,
        and_(
            feedback.c.card_uuid == issued_cards.c.uuid,
            feedback.c.outcome == "accepted",
            from_its_client(issued_cards),
        ),
    )
    .where(
        issued_cards.c.patient_key == bindparam("patient"),
        issued_cards.c.issued_at >= bindparam("today"),
        issued_cards.c.service_id.in_(bindparam("services", expanding=True)),
        issued_cards.c.draft_hash.is_not(None),
    )
)
