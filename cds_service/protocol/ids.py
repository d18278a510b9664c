"""Ids, and the references ``context.selections`` names draft orders by: how long an id may be,
and what a selection must look like to name a draft at all."""

from __future__ import annotations

import re

from cds_service.errors import shown
from cds_service.fhir.letters import has_invisible, invisible_runs
from cds_service.fhir.resource_types import RESOURCE_TYPES

# The longest id accepted anywhere: FHIR R4 says 64 characters, but real EHRs send longer ones
# (Epic's), and the R4B models the drafts are read with allow 255; ``selections`` and the
# context's ids take the same, so an id accepted in ``draftOrders`` is accepted everywhere. Nor
# are its characters checked more strictly than the drafts' own (a control character alone is
# refused): "req_1", "req 1" (no FHIR ids) are reviewed in draftOrders, and a selection naming
# one refused the whole call, critical cards with it.
MAX_ID = 255
# A version is no draft's: "MedicationRequest/request-123/_history/2" was read as the id
# "request-123/_history/2" (a draft id may hold a "/": "req/1" is reviewed), named no draft, and
# the call answered no cards, unreviewed, where an absolute URL was a 400. CDS Hooks names a
# draftOrders entry by "Type/id" (a draft has no version yet): refused, as the URL is, rather
# than guessed at. The pattern says it too, for the OpenAPI document.
VERSIONED = "/_history/"
# A history ("…/_history", no version) and a trailing "/" name no draft either: "abc/" is no
# draft's id, and the selection of one answered no cards, unreviewed, as the version did.
HISTORY = "/_history"
# What ``str.strip`` strips that is no control character (those are refused anyway): a space
# there pads an id (``padded``).
SPACES = r" \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

# ``context.patientId`` as the OpenAPI document states it (``HookContext`` checks it itself): an
# id, with "Patient/" before it or not, of dots alone neither ("." and ".." are path steps) and
# at most MAX_ID characters long. Its lookaheads are negative only: a generator skips those and
# its draws are filtered, where a positive one is drawn as text of its own.
PATIENT_ID_PATTERN = rf"^(?:Patient/|(?!Patient/))(?!\.*$)[\s\S]{{1,{MAX_ID}}}$"


def reference_pattern(resource_type: str, *, unpadded: bool = False) -> str:
    """A selection's form, its type matched by ``resource_type``: the service checks the form
    with any capitalised word as the type, then the type against ``RESOURCE_TYPES`` (each
    refusal says which); the OpenAPI document states both in one pattern, the types listed. It
    states the id ``unpadded`` too: a padded one is refused unless a draft's id is as padded,
    which no pattern can say."""
    last = f"[^\\x00-\\x1f\\x7f/{SPACES if unpadded else ''}]"
    shown_only = f"(?![{SPACES}])(?!.*{_any_of(invisible_runs())})" if unpadded else ""
    return rf"^(?!.*{VERSIONED})(?!.*{HISTORY}$){resource_type}/{shown_only}[^\x00-\x1f\x7f]{{0,{MAX_ID - 1}}}{last}$"


def _any_of(runs: list[tuple[int, int]]) -> str:
    """Runs of code points as one group, read alike by Python and by ECMA-262 with or without its
    ``u`` flag (a JSON Schema pattern is ECMA's, and validators compile it either way): the BMP as
    a class of \\uXXXX escapes; above it each character itself, alone, outside any class. Without
    ``u`` a character above the BMP is two UTF-16 units, so in a class its range ran from one
    unit to another, out of order, and the whole document was refused; alone it is the two units
    in a row, which is the character as either reads it, and Python's ``re`` makes the
    alternatives a class of its own."""
    plane = [(first, min(last, 0xFFFF)) for first, last in runs if first <= 0xFFFF]
    above = [chr(point) for first, last in runs for point in range(max(first, 0x10000), last + 1)]
    members = "".join(f"\\u{first:04x}" if first == last else f"\\u{first:04x}-\\u{last:04x}" for first, last in plane)
    return "(?:" + "|".join([f"[{members}]", *above]) + ")"


REFERENCE = re.compile(reference_pattern("[A-Z][A-Za-z]+"))


def reference_problem(index: int, reference: str) -> str | None:
    """Why selection ``index`` can name no draft whatever the drafts are, or None. A type that is
    no FHIR type ("Medicationrequest/request-123") is one: a draft of it is refused
    (``json.unread_entry``), and its selection answered no cards, only logged."""
    said = f"item {index} ({shown(reference)})"
    if VERSIONED in reference:
        return f"{said} names a version ({VERSIONED}): a draft is named by Type/id"
    if reference.endswith((HISTORY, "/")):
        ending = f"names a history ({HISTORY})" if reference.endswith(HISTORY) else 'ends in "/"'
        return f"{said} {ending}: a draft is named by Type/id"
    if not REFERENCE.fullmatch(reference):  # match's $ let a trailing newline through
        return f"{said} is not a reference of the form Type/id"
    if reference.split("/", 1)[0] not in RESOURCE_TYPES:
        return f"{said} names no FHIR resource type (case-sensitive: MedicationRequest/id)"
    return None


def padded(reference: str) -> bool:
    """Does the selection's id begin or end with a space, or hold a character that does not show
    (a zero-width space)? "MedicationRequest/request-123 " named no draft, and the call answered
    no cards, only logged. Not refused by its form alone: a draft's id may be as odd ("req 1" is
    reviewed), and its selection must name it (``request._drafts_under_review``)."""
    draft_id = reference.split("/", 1)[1]
    return draft_id != draft_id.strip() or has_invisible(draft_id)
