"""What a card offering an update (the one-click change to a draft) adds of the draft's words the
update leaves out (``rules.safe_update``): card text, so it lives with the cards'
(``cards/update-notes.toml``, a site's own over it) and is checked at start-up as theirs is. The
facts say which note applies (``facts.orders``); ``pipeline.cards`` renders it."""

from __future__ import annotations

from importlib.resources.abc import Traversable
from typing import NamedTuple

from cds_service.content.reading import CardContentError, placeholders, read_toml

NOTES_FILE = "update-notes.toml"
WORDS_LEFT_OUT = "words-left-out"
SUBLINGUAL_LEFT_OUT = "sublingual-left-out"
BRAND_LEFT_OUT = "brand-left-out"
BRAND_NAME_LEFT_OUT = "brand-name-left-out"
# Each note and the facts its text may name: a misspelt one would fail at a hook call.
NOTE_FACTS = {
    WORDS_LEFT_OUT: frozenset[str](),
    SUBLINGUAL_LEFT_OUT: frozenset[str](),
    BRAND_LEFT_OUT: frozenset({"brand", "said"}),
    BRAND_NAME_LEFT_OUT: frozenset({"brand"}),
}


class Note(NamedTuple):
    """A note to add to a card, by its key, with its facts' values."""

    key: str
    facts: tuple[tuple[str, str], ...] = ()


def load_notes(path: Traversable) -> dict[str, str]:
    """The notes' text by key: each one the service adds, a string naming only its own facts;
    a key missing, unknown or misspelt stops start-up, naming the file."""
    data = read_toml(path)
    if missing := sorted(set(NOTE_FACTS) - set(data)):
        raise CardContentError(f"{path}: missing notes {missing}")
    if stray := sorted(set(data) - set(NOTE_FACTS)):
        raise CardContentError(f"{path}: unknown notes {stray}, not one of {sorted(NOTE_FACTS)}")
    notes = {}
    for key, allowed in NOTE_FACTS.items():
        text = data[key]
        if not isinstance(text, str) or not text.strip():
            raise CardContentError(f"{path}: {key} must be the note's text")
        unknown = sorted(placeholders(text, f"{path}: {key}") - allowed)
        if unknown:
            named = ", ".join(f"{{{fact}}}" for fact in sorted(allowed)) or "none"
            raise CardContentError(f"{path}: {key} names {unknown}, which this note does not have (it has: {named})")
        notes[key] = " ".join(text.split())
    return notes
