"""Card records an older release wrote with their draft's reference as sent, keyed.

Since schema version 9 a card's ``order_key``, ``draft``, ``draft_hash`` and the values of its
``keys_after`` are keyed hashes (``Store.pseudonym``), as its ``patient_key`` always was: an EHR
may build an order's id from its patient's. The records of version 8 and before, and those a
process of the release before writes while a rolling upgrade overlaps the two, have them as
sent (``keyed`` null). They are keyed here, a page to a transaction (an upgrade stopped halfway
keeps what it did; a page never waits long for the rows it locks), each row once whoever else
keys it at the same time: once the service has started (not before its first request), every
hour with the retention sweep, and before analytics count alerts. Until then the quiet read
keys them as it reads them (``as_keyed``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, text

from cds_service.storage.engine import waits_for_locks

PAGE = 1000  # records keyed a transaction
LOCK_WAIT = "1s"

_PAGE_OF_UNKEYED = text(
    "SELECT uuid, order_key, draft, draft_hash, keys_after FROM issued_cards "
    "WHERE keyed IS NULL AND uuid > :after ORDER BY uuid LIMIT :size"
)
# ``keyed IS NULL`` again: a record another process keyed meanwhile is not keyed twice.
_KEY = text(
    "UPDATE issued_cards SET order_key = :order_key, draft = :draft, draft_hash = :draft_hash, "
    "keys_after = :keys_after, keyed = 1 WHERE uuid = :uuid AND keyed IS NULL"
)


def key_all(writing: Callable[[], AbstractContextManager[Connection]], pseudonym: Callable[[str], str]) -> int:
    """Key every unkeyed record, a page to a ``writing()`` transaction; how many were keyed. A
    page waits for a row another transaction holds at most ``LOCK_WAIT``, under the statement
    timeout: then ``OperationalError``, and the next sweep tries again (an analytics read must
    not wait on a lock, nor a stranded transaction hold a pooled connection for good)."""
    keyed, after = 0, ""
    while True:
        with writing() as connection:
            waits_for_locks(connection, LOCK_WAIT)
            page = _key_page(connection, pseudonym, after)
        if page is None:
            return keyed
        keyed, after = keyed + page[1], page[0]


def _key_page(connection: Connection, pseudonym: Callable[[str], str], after: str) -> tuple[str, int] | None:
    """Key the unkeyed records after the uuid ``after``, a page of them: the page's last uuid and
    how many this transaction keyed, or None when there were none."""
    rows = connection.execute(_PAGE_OF_UNKEYED, {"after": after, "size": PAGE}).all()
    if not rows:
        return None
    result = connection.execute(_KEY, [_keyed(row, pseudonym) for row in rows])
    return str(rows[-1].uuid), result.rowcount  # not those another process keyed meanwhile


def as_keyed(value: str | None, keyed: int | None, pseudonym: Callable[[str], str]) -> str | None:
    """A stored value as a keyed record holds it."""
    return value if keyed or value is None else pseudonym(value)


def keys_after(stored: str | None, keyed: int | None, pseudonym: Callable[[str], str]) -> dict[str, str]:
    """A record's ``keys_after``, read (unreadable, changed by hand: none), its keys keyed."""
    try:
        after = json.loads(stored) if stored else None
    except (ValueError, RecursionError):  # nested past the parser's depth: changed by hand too
        return {}
    if not isinstance(after, dict):
        return {}
    return {str(uuid): str(key) if keyed else pseudonym(str(key)) for uuid, key in after.items()}


def _keyed(row: Any, pseudonym: Callable[[str], str]) -> dict[str, Any]:
    after = keys_after(row.keys_after, None, pseudonym)
    return {
        "uuid": row.uuid,
        "order_key": pseudonym(row.order_key),
        "draft": as_keyed(row.draft, None, pseudonym),
        "draft_hash": as_keyed(row.draft_hash, None, pseudonym),
        "keys_after": json.dumps(after) if after else None,
    }
