"""The record's words as they read, for matching only: what a drug's name is looked up by is not
always what was typed. A name pasted from a formulary or a word processor may carry a soft hyphen
("Cyclo\u00adbenzaprine"), a zero-width space, a word joiner or a byte-order mark, none of which
shows, or be spelt in full-width letters ("Ｃｙｃｌｏｂｅｎｚａｐｒｉｎｅ", an East Asian input method):
each read as no drug at all, no card and no notice, a check silently missed (an adversarial
review). What a card shows or an update sends back stays the record's own words.
"""

from __future__ import annotations

import unicodedata

# Every invisible format character (category Cf: soft hyphen, zero-width space and joiners, word
# joiner, BOM, direction marks), as a ``str.translate`` table that drops them. Scanned from
# Unicode's own data, not listed by hand; Cf lives in planes 0, 1 and 14 only, and scanning those
# (0.03 s at start-up) rather than all seventeen (0.17 s) finds the same 163.
_INVISIBLE: dict[int, None] = {
    point: None
    for plane in (0, 1, 14)
    for point in range(plane << 16, (plane + 1) << 16)
    if unicodedata.category(chr(point)) == "Cf"
}


def as_matched(text: str) -> str:
    """``text`` as names are matched: invisible format characters dropped, then NFKC (full-width
    letters as ASCII, a no-break space a space, a ligature its letters). Almost every name is
    ASCII, which neither changes: it comes back as it is, told in C (~30 ns), so the rest
    (~2.5 µs a name) is paid only by words that need it."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text.translate(_INVISIBLE))


def has_words(value: object) -> bool:
    """A string with more than blanks in it: a display or text of spaces, or of characters that do
    not show (a zero-width space alone), names nothing."""
    if not isinstance(value, str):
        return False
    seen = value if value.isascii() else value.translate(_INVISIBLE)
    return seen != "" and not seen.isspace()
