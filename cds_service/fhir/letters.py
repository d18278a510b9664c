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
# joiner, BOM, direction marks), scanned from Unicode's own data (Cf lives in planes 0, 1 and 14
# only: 0.03 s at start-up, against 0.17 s for all seventeen); with the other default-ignorable
# code points, which Python's data does not name (Unicode's DerivedCoreProperties: the combining
# grapheme joiner, the Hangul fillers, variation selectors), and the braille blank, which shows
# as a space: each hid a drug as a Cf character did (a review of the diff).
_IGNORABLE = (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0)
_IGNORABLE_RANGES = ((0x180B, 0x180F), (0xFE00, 0xFE0F), (0xFFF0, 0xFFF8), (0xE0100, 0xE01EF))
_INVISIBLE_POINTS = frozenset(
    {p for plane in (0, 1, 14) for p in range(plane << 16, (plane + 1) << 16) if unicodedata.category(chr(p)) == "Cf"}
    | set(_IGNORABLE)
    | {p for low, high in _IGNORABLE_RANGES for p in range(low, high + 1)}
)
_INVISIBLE: dict[int, None] = dict.fromkeys(_INVISIBLE_POINTS)
_AS_SPACE: dict[int, str] = dict.fromkeys(_INVISIBLE_POINTS, " ")


def as_matched(text: str) -> tuple[str, ...]:
    """``text`` as names are matched, after NFKC (full-width letters as ASCII, a no-break space a
    space, a ligature its letters): with invisible characters read as spaces, where they part two
    words ("Phenelzine\u200b15 mg": dropped, "phenelzine15" named no drug and a critical card was
    lost), then dropped, where they split one ("Cyclo\u00adbenzaprine"). Almost every name is
    ASCII, which neither changes: it comes back alone, told in C (~30 ns), so the rest (~5 µs a
    name) is paid only by words that need it."""
    if text.isascii():
        return (text,)
    spaced = unicodedata.normalize("NFKC", text.translate(_AS_SPACE))
    joined = unicodedata.normalize("NFKC", text.translate(_INVISIBLE))
    return (spaced,) if joined == spaced else (spaced, joined)


def has_words(value: object) -> bool:
    """A string with more than blanks in it: a display or text of spaces, or of characters that do
    not show (a zero-width space alone), names nothing."""
    if not isinstance(value, str):
        return False
    seen = value if value.isascii() else value.translate(_INVISIBLE)
    return seen != "" and not seen.isspace()


def has_invisible(text: str) -> bool:
    """Does ``text`` hold a character that does not show (a zero-width space, a soft hyphen)?"""
    return not text.isascii() and text.translate(_INVISIBLE) != text


def invisible_runs() -> list[tuple[int, int]]:
    """The characters ``has_invisible`` finds, as runs of code points (first, last): what a
    published pattern (the OpenAPI document's selection) lists to say the same."""
    runs: list[tuple[int, int]] = []
    for point in sorted(_INVISIBLE_POINTS):
        if runs and runs[-1][1] == point - 1:
            runs[-1] = (runs[-1][0], point)
        else:
            runs.append((point, point))
    return runs
