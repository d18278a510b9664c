"""The record's words as they may go into a card's Markdown ``detail``: shown, never acted on.

A drug's or a condition's words come from the record as sent, and CDS Hooks renders a card's
detail as GitHub Flavored Markdown: a link, an image or HTML in them would show as the service's
own. ``inert`` leaves emphasis (it can mislead no click, and a card's facts carry the service's
own bold); ``plain`` escapes it too, for a notice's quote of the EHR's words. Both keep a bare
link in a code span. Block syntax needs a line of its own, and the words are one line
(``fhir.coding.on_one_line``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

# What makes words a link, an image or HTML in Markdown with brackets: a backslash (which would
# undo an escape of ours), any "<" (a tag, an autolink, an email address), "](" (an inline link
# or image), and a backtick, which could close the code span a bare link is kept in (below).
_ESCAPED = {"\\": "\\\\", "<": "\\<", "](": "]\\(", "`": "\\`"}

# GFM's links with no brackets (its autolink extension): a web address after a scheme or "www.",
# and an email address. No escape stops them: the sandbox's remark-gfm finds them by pattern in
# the text once escapes are read. A code span does (neither GFM nor remark links inside one), so
# each is kept in one and shown as written.
# An email address is tried from the start of its run of name characters only: tried from each
# character, 100 kB of letters with no "@" took seconds (the same matches: a run's first
# character is where the leftmost match begins).
_BARE_LINK = re.compile(
    r"(?:https?://|ftp://|mailto:|xmpp:|www\.)\S*|(?<![-.\w+])[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.IGNORECASE
)


def may_be_active(text: str) -> bool:
    """Could ``text`` hold a link, an image or HTML, its own or the record's? Most words, and
    most cards' details, have none. Asked by substring (a scan in C each), not by one pattern
    of alternatives: a case-blind alternation tried each at every character cost a 500-entry
    call ~1M instructions in its cards' details. ``mailto:`` and ``xmpp:`` name an address (an @)."""
    return (
        "\\" in text
        or "<" in text
        or "](" in text
        or "`" in text
        or "://" in text
        or "@" in text
        or "www." in text.lower()
    )


def inert(value: Any) -> Any:
    """A fact as it may go into a card's Markdown ``detail``: the record's words shown as text
    (the summary is plain text, and takes them as they are)."""
    if type(value) is not str or not may_be_active(value):
        return value
    return _shown(value, _escaped)


def plain(words: str) -> str:
    """Words with no Markdown of their own at all, emphasis included: a notice quotes the EHR's
    words beside its own bold (**draft order 2 of 3**), which a stray ``**`` in them would move."""
    return _shown(words, lambda text: _ANY_MARKUP.sub(r"\\\1", text))


# What can start emphasis, code, a link, raw HTML or strikethrough inside a line (CommonMark, GFM).
_ANY_MARKUP = re.compile(r"([\\`*_\[\]<>~])")


def _shown(text: str, escaped: Callable[[str], str]) -> str:
    """``text`` with its bare links in code spans (no escape stops GFM's autolinks) and the rest
    escaped."""
    parts, at = [], 0
    for found in _BARE_LINK.finditer(text):
        parts += [escaped(text[at : found.start()]), _code(found.group(0))]
        at = found.end()
    parts.append(escaped(text[at:]))
    return "".join(parts)


def _escaped(text: str) -> str:
    """Each active sequence escaped, by ``str.replace`` in C: a Python call a match took ~1 µs a
    character of a record's text of backticks (1.7 MB: 0.9 s on the event loop; a performance
    review). The backslash first: the others only add backslashes, and never make or break a "](" ."""
    for active, escape in _ESCAPED.items():
        text = text.replace(active, escape)
    return text


def _code(text: str) -> str:
    """``text`` in a code span: fenced by one backtick more than its longest run of them, and
    spaced from the fence where it begins or ends with one (CommonMark strips one space)."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


# The most names a card gives in one list; the others are counted.
MAX_NAMED = 3


def named(names: Iterable[str], separator: str) -> str:
    """``names`` joined, the first ``MAX_NAMED`` named and the rest counted: "a; b; c and 2 more"."""
    names = list(names)
    shown = separator.join(names[:MAX_NAMED])
    return shown if len(names) <= MAX_NAMED else f"{shown} and {len(names) - MAX_NAMED} more"
