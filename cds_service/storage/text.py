"""Text as both databases can store it: any string a client's valid JSON can carry.

JSON strings may hold U+0000 (``\\u0000``), which PostgreSQL's text types refuse outright, so a
NUL in a feedback comment, code or card id, or in a hook call's ``hookInstance``, failed the
whole write (a 500 for a feedback batch on every resend; a card record lost in the background).
Lone surrogates (``\\ud800``) cannot be encoded as UTF-8 by either database driver; orjson
refuses them at the door today, but storage must not depend on that.

The choice (issue 16 #5): such characters are *stored safely*, replaced by U+FFFD, the
Unicode replacement character, rather than refused. Neither carries meaning in an id or in
words a clinician typed, and refusing would drop what does: the outcome, the override reason
(a "Don't show again" snoozes a rule), the comment, the card record that attributes feedback
to its rule. Ids the service issued never hold them, so a replaced character cannot make an id
match a card it did not name. The replacement is logged (field names, never values).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

REPLACEMENT = "\ufffd"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _storable_char(char: str) -> str:
    return REPLACEMENT if char == "\x00" or "\ud800" <= char <= "\udfff" else char


def storable(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD; itself when it has none."""
    if value.isascii():
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(map(_storable_char, value))
    return value.replace("\x00", REPLACEMENT) if "\x00" in value else value


def storable_row(row: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The row with every string made storable, and the names of the columns that changed."""
    stored: dict[str, Any] = {}
    changed: list[str] = []
    for name, value in row.items():
        if isinstance(value, str):
            safe = storable(value)
            if safe is not value and safe != value:
                changed.append(name)
            value = safe
        stored[name] = value
    return stored, changed


def storable_rows(rows: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    """Rows made storable; the columns that changed are logged (names only), with ``what`` they are."""
    stored, changed = [], set()
    for row in rows:
        safe, names = storable_row(row)
        stored.append(safe)
        changed.update(names)
    if changed:
        log.info("%s: NUL or lone surrogates replaced by U+FFFD in %s", what, ", ".join(sorted(changed)))
    return stored


def card_id(sent: str) -> str:
    """A feedback item's card id as stored, and matched to its card: a UUID in lower case, as the
    service writes them (RFC 4122: case-insensitive on input), so that one sent in upper case
    names its card rather than counting as feedback about no card on record; anything else as
    sent. What the client sent, when it differs, is kept beside it (``feedback.card_sent``)."""
    return sent.lower() if _UUID.fullmatch(sent) else sent


def suggestion_id(sent: str) -> str:
    """An accepted suggestion's id as stored, and matched to what its card offered: a UUID in
    lower case, as for ``card_id``. Compared as sent, one in upper case was refused as naming no
    suggestion of its card (a 200 a client takes for delivered), and its acceptance lost to
    analytics and to what quiets a rule after its swap (``storage.quiet``); anything else (a
    label sent by mistake) as sent. Unlike a card id's (``feedback.card_sent``), the spelling sent
    is not kept: it says nothing the id in lower case does not, and a column for it would need a
    migration. Stored ids an earlier release kept as sent are matched the same way where they are
    read (``storage.offered.suggestion_ids``)."""
    return card_id(sent)
