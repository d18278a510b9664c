"""What a search's Bundle says of itself: ``total``, how many resources the whole search matched,
against how many of its entries are those matches. A searchset saying ``total: 2`` that held one
order and no ``next`` link was read as the patient's whole history: an MAO inhibitor on the page
the EHR (or its server) left out gave no card, and nothing said the history was cut (an
adversarial review). Entries ``_include``d beside the matches (a Medication an order names) and
the search's own OperationOutcome are no matches, so they cannot make up for a missing one.
"""

from __future__ import annotations

from collections.abc import Collection
from itertools import repeat
from typing import Any

from cds_service.fhir.json import as_int, bundle_entries, bundle_resources

# What ``total`` must be, as a 400 (or a failed fetch) says it.
NOT_A_COUNT = "must be the number of the search's matches: a whole number, 0 or more"
# ``search.mode`` of an entry that is no match of the search (FHIR's other codes).
_NOT_MATCHES = frozenset(("include", "outcome"))


def total_of(bundle: dict[str, Any]) -> int | None:
    """The matches ``total`` counts; None when it says none (absent, or no count: ``unread_total``).
    Read as other integers are (``as_int``: ``2.0`` and ``"2"`` are 2), the sandbox's way."""
    total = as_int(bundle.get("total"))
    return total if total is not None and total >= 0 else None


def unread_total(bundle: dict[str, Any]) -> tuple[str, str] | None:
    """Where a Bundle's ``total`` is no count, and what belongs there, as ``json.unread_entry``
    says an entry: read as absent, a cut history sent with ``"total": "abc"`` passed for whole."""
    if bundle.get("total") is None or total_of(bundle) is not None:
        return None
    return "total", NOT_A_COUNT


def matches(bundle: dict[str, Any], types: Collection[str] = ()) -> int:
    """How many of its entries are the search's matches (FHIR's Bundle.total counts entries of
    ``search.mode`` ``match``, never ``include`` or ``outcome``). ``search.mode`` is optional (many
    servers say none): an entry that says none is a match when its resource is of the search's
    ``types``, where they are known, on every page alike. A Medication ``_include``d beside one
    order, its mode unsaid, made up for the order a ``total: 2`` said was missing (a code review),
    and one beside orders saying ``match`` still did."""
    entries = bundle_entries(bundle)
    try:
        searches: list[Any] = list(map(dict.get, entries, repeat("search")))  # TypeError: an entry not an object
    except TypeError:
        searches = [entry.get("search") if type(entry) is dict else None for entry in entries]
    if not any(searches):
        return sum(1 for r in bundle_resources(bundle) if r.get("resourceType") in types) if types else len(entries)
    try:
        modes = list(map(dict.get, searches, repeat("mode")))  # TypeError: an entry with no search
    except TypeError:
        modes = [search.get("mode") if type(search) is dict else None for search in searches]
    if set(map(type, modes)) == {str}:  # every entry saying its mode (HAPI's way): counted in C
        return len(modes) - sum(map(modes.count, _NOT_MATCHES))
    return sum(map(_is_match, entries, modes, repeat(types)))


def _is_match(entry: Any, mode: Any, types: Collection[str]) -> bool:
    """Is an entry one of the search's matches? A mode that is no string (a list, a number) says
    nothing, as none does: the entry is then read by its resource's type, when ``types`` are known."""
    if type(mode) is str:
        return mode not in _NOT_MATCHES
    if not types:
        return True
    resource = entry.get("resource") if type(entry) is dict else None
    return type(resource) is dict and resource.get("resourceType") in types


def short_of_total(total: int | None, matched: int) -> bool:
    """Does ``total`` count more matches than were read (``matched``, over every page read)? A total
    below them (a server counting otherwise, or the record grown between pages) is not read as
    an error: the entries were read, and they are what the checks use."""
    return total is not None and total > matched
