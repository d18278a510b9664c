"""Answers about a piece of parsed FHIR JSON, kept by the JSON's text.

A hospital's histories name the same concepts over and over: every patient's amlodipine order
carries the same ``medicationCodeableConcept``, every visit's low back pain the same ``code``.
Reading one in Python (its codings, a tuple of codes, a terminology look-up) costs a few
microseconds an entry; orjson writes it back as text in C in a tenth of that, and the text is the
key to an answer already worked out, by whichever call first met it. An answer depends on the
value and its owner alone (the terminology whose codes it looks up): never on the patient or the
day.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

import orjson

O = TypeVar("O")  # noqa: E741  # the owner: a terminology
T = TypeVar("T")

# Enough for a formulary's products and a problem list's codes as sites write them; a table is
# emptied when full, which costs one more reading of each value. Full is a count or a size: a
# client sending megabytes of text in a code must not make a table hold it (no value over a few
# KiB is kept at all: a real concept is a few hundred bytes, a taper's dosage a few KiB).
KNOWN_VALUES = 16384
KNOWN_BYTES = 8 * 1024 * 1024
LARGEST_KEPT = 8 * 1024
_UNKNOWN: Any = object()


class JsonTable(Generic[T]):
    """Answers kept by the JSON text of what they answer, bounded: cleared when full."""

    def __init__(self) -> None:
        self.known: dict[bytes, T] = {}
        self._bytes = 0

    def keep(self, key: bytes, answer: T) -> T:
        """``answer``, kept under ``key`` (the JSON text of what it answers) if it is not too large."""
        if len(key) > LARGEST_KEPT:
            return answer
        if len(self.known) >= KNOWN_VALUES or self._bytes + len(key) > KNOWN_BYTES:
            self.known.clear()
            self._bytes = 0
        # A copy: orjson's bytes keep the 4 KiB buffer they were written into (a 160-byte concept
        # held 4 KiB: 64 MiB a full table), the copy only what it holds.
        self.known[bytes(memoryview(key))] = answer
        self._bytes += len(key)
        return answer


class JsonTables(Generic[O, T]):
    """A ``JsonTable`` per owner: a site's terminology answers for its own codes only. The owner
    is held weakly, though a terminology lives as long as the process (its own caches hold it)."""

    def __init__(self) -> None:
        self._tables: WeakKeyDictionary[O, JsonTable[T]] = WeakKeyDictionary()

    def table(self, owner: O) -> JsonTable[T]:
        table = self._tables.get(owner)
        if table is None:
            table = self._tables[owner] = JsonTable()
        return table


class JsonMemo(JsonTables[O, T]):
    """``answer(owner, value)``, kept per owner by the value's JSON text."""

    def __init__(self, answer: Callable[[O, Any], T]) -> None:
        super().__init__()
        self._answer = answer

    def reader(self, owner: O) -> Callable[[Any], T]:
        """The answer of a value, for one owner: asked once a call, then of every entry (the
        table's look-up written out here: a call less an entry)."""
        table = self.table(owner)
        answer, known, dumps = self._answer, table.known, orjson.dumps

        def read(value: Any) -> T:
            try:
                key = dumps(value)
            except TypeError:  # what orjson cannot write (nested past its limit): read each time
                return answer(owner, value)
            found = known.get(key, _UNKNOWN)
            return table.keep(key, answer(owner, value)) if found is _UNKNOWN else found

        return read
