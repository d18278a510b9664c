"""What an acceptance must name to be one: a suggestion its card offered (the suggestion's ``uuid``).

One rule, wherever an acceptance counts: the feedback writer refuses an item naming none
(``storage.feedback_writer``), and what reads stored feedback back does not count one as an
acceptance (``reporting.queries``, order-sign's ``storage.quiet``). Those that reach the
database unchecked are kept as sent, never changed or dropped: feedback stored before its
card's record (``storage.early_feedback`` joins it later, when the client has long been told it
is stored: too late to refuse). Another client's item on a card is stored unchecked too (a
refusal would tell it what the card offered), and counts for no card (``schema.from_its_client``).
Checked where it is read, the rule needs no column of its own, nor a
migration, and holds for what earlier releases stored too. A suggestion uuid matches in any
case (``storage.text.suggestion_id``), on either side: an earlier release stored ids as sent.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from cds_service.storage.text import suggestion_id


def offered(accepted: Collection[str], suggestions: str | None) -> bool | None:
    """Does an acceptance of the suggestion ids ``accepted`` name one its card offered (or name
    none)? ``suggestions``: the card's stored list (``issued_cards.suggestions``). One id the card
    offered is enough: the acceptance is real, and an id beside it harms nothing (only a
    dose-change swap's id is read back, ``storage.quiet``). A card stored before schema version
    8 (or by an older release during a rolling upgrade) has no list to check against. None: the
    card's list could not be read (changed by hand), and the acceptance is taken as sent."""
    if suggestions is None or not accepted:
        return True
    ids = suggestion_ids(suggestions)
    if ids is None:
        return None
    return any(suggestion_id(suggestion) in ids for suggestion in accepted if isinstance(suggestion, str))


def unoffered(accepted: str | None, suggestions: str | None) -> bool:
    """Stored feedback's ``accepted_suggestions`` naming only suggestions its card did not offer
    (``offered`` is False): no acceptance, whatever its outcome says. A list that cannot be read
    (either, changed by hand) is taken as sent, as at arrival."""
    ids = suggestion_ids(accepted) if accepted else []
    return ids is not None and offered(ids, suggestions) is False


def suggestion_ids(stored: str) -> list[str] | None:
    """A stored JSON list of suggestion ids, each as it is matched (a UUID in lower case: an
    earlier release stored an acceptance's as sent); None when it is not a list. What is not a
    string (changed by hand) is dropped: it names no suggestion, and an object or a list met
    ``in`` a dict of ids raised TypeError on every call for that patient (a code review)."""
    try:
        ids = json.loads(stored)
    except (ValueError, RecursionError):
        return None
    return [suggestion_id(id_) for id_ in ids if isinstance(id_, str)] if isinstance(ids, list) else None
