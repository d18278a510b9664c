"""The feedback items not stored, and why: the answer's ``refused`` list, each by its index in the
batch (``storage.feedback_writer`` writes the others). Its kinds, the metrics' label:

- ``database``: the database would not take the item (``REFUSED_REASON``);
- ``contradiction``: the sender has stored its moment (card, outcome, ``outcomeTimestamp``)
  saying something else (``contradicting``);
- ``unoffered-suggestion``: it accepts only suggestions its card did not offer (what the writer
  finds of the item's card, refused by ``not_offered``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.sql.elements import ColumnElement

from cds_service.storage.offered import suggestion_ids
from cds_service.storage.records import Refused
from cds_service.storage.schema import as_utc, feedback

REFUSED_REASON = "the database could not store this item; the service log has the error"
UNOFFERED_REASON = (
    "acceptedSuggestions names no suggestion this card offered: each id is the uuid of one of the card's suggestions"
)
# What makes an item one with a resend of it (its client aside: ``_sent_by``), and what it says,
# column by column, by the name of its field in the feedback request.
_MOMENT = (feedback.c.card_uuid, feedback.c.outcome, feedback.c.outcome_timestamp)
_SAID = {
    "accepted_suggestions": "acceptedSuggestions",
    "override_system": "overrideReason.reason.system",
    "override_code": "overrideReason.reason.code",
    "override_display": "overrideReason.reason.display",
    "user_comment": "overrideReason.userComment",
}


def not_offered(connection: Connection, rows: list[tuple[int, dict[str, Any]]]) -> list[Refused]:
    """The items (``rows``, by their index in the batch) accepting only suggestions their card did
    not offer, refused: a client's bug (the id is the suggestion's ``uuid``), not a click on
    nothing to count. One whose moment the sender has stored already (an older release took it
    during a rolling upgrade) is left to be a resend, or a contradiction, as any other."""
    where = feedback.c.card_uuid.in_({row["card_uuid"] for _, row in rows})
    query = select(*_MOMENT)
    stored = {_moment(r._mapping) for r in connection.execute(query.where(where, *_sent_by(rows)))}
    return [Refused(i, UNOFFERED_REASON, "unoffered-suggestion") for i, row in rows if _moment(row) not in stored]


def _sent_by(rows: list[tuple[int, dict[str, Any]]]) -> tuple[ColumnElement[bool], ...]:
    """The stored feedback of the items' sender (every item of a batch is one client's)."""
    sender = rows[0][1]
    return (
        feedback.c.issuer.is_not_distinct_from(sender["issuer"]),
        feedback.c.tenant.is_not_distinct_from(sender["tenant"]),
    )


def _moment(row: Any) -> tuple[str, str, datetime]:
    return row["card_uuid"], row["outcome"], as_utc(row["outcome_timestamp"])


def contradicting(connection: Connection, rows: list[tuple[int, dict[str, Any]]]) -> list[Refused]:
    """The items (by their index in the batch) whose moment is stored saying something else:
    read after the insert, in its transaction, so a concurrent writer's item, committed first, is
    what they are held to. Only the sender's own feedback is read, the only feedback that keeps
    an item from being stored (``schema.feedback``'s key): another client's of the same moment
    is never compared, and a refusal tells no client what another wrote of a card."""
    query = select(*_MOMENT, *(feedback.c[column] for column in _SAID))
    where = feedback.c.card_uuid.in_({row["card_uuid"] for _, row in rows})
    stored = {_moment(r._mapping): r._mapping for r in connection.execute(query.where(where, *_sent_by(rows)))}
    refused = []
    for index, row in rows:
        if (kept := stored.get(_moment(row))) is None:
            continue
        if differ := [field for column, field in _SAID.items() if _says(kept, column) != _says(row, column)]:
            refused.append(Refused(index, _contradiction(differ), "contradiction"))
    return refused


def _says(row: Any, column: str) -> object:
    """What a row says in ``column``; the suggestions accepted as a set (a resend may list them
    in another order, or one twice, or a UUID in another case: ``storage.offered``)."""
    value = row[column]
    return frozenset(suggestion_ids(value) or ()) if column == "accepted_suggestions" and value else value


def _contradiction(fields: list[str]) -> str:
    return (
        f"feedback for this card, outcome and outcomeTimestamp is stored with another {', '.join(fields)}; "
        "it is kept as first sent: a correction needs its own outcomeTimestamp"
    )
