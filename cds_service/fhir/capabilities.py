"""What a FHIR server says of itself: its /metadata, and an OperationOutcome saying it has no such resource type.

The prefetch is fetched in the server's own FHIR version (a DSTU2 server has ``MedicationOrder``,
not ``MedicationRequest``), and a search for a type the server does not have is no data, not
a failed fetch. Both are read here from the server's own answers, in any version. An error's
words alone never outweigh the server's statement: a type it lists that a search is refused for
is a failed fetch (``pipeline.fhir_client``), whatever the error says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cds_service.fhir.json import as_list, as_obj, as_str
from cds_service.fhir.versions import release


@dataclass(frozen=True)
class ServerFacts:
    """What a FHIR server's /metadata says of it: its version, and the resource types it serves
    (None when it lists none, or when /metadata could not be read)."""

    version: str | None
    types: frozenset[str] | None = None
    # The ``_include`` values its searches support (``searchInclude``: "MedicationRequest:medication").
    includes: frozenset[str] = frozenset()

    def lacks(self, resource_type: str) -> bool:
        return self.types is not None and resource_type not in self.types

    def lists(self, resource_type: str) -> bool:
        """Whether its statement says it serves ``resource_type``: then an error answered for a
        search of that type is no proof that the server has none (a 400 "Invalid MedicationRequest
        search" read so hid an MAO inhibitor's critical card)."""
        return self.types is not None and resource_type in self.types


UNKNOWN = ServerFacts(None)


def server_facts(metadata: dict[str, Any]) -> ServerFacts:
    """The facts of a CapabilityStatement (STU3 on) or Conformance (DSTU2)."""
    if metadata.get("resourceType") not in ("CapabilityStatement", "Conformance"):
        return UNKNOWN
    resources = [
        as_obj(resource)
        for rest in as_list(metadata.get("rest"))
        if as_obj(rest).get("mode", "server") == "server"
        for resource in as_list(as_obj(rest).get("resource"))
    ]
    types = {kind for resource in resources if (kind := as_str(resource.get("type")))}
    includes = {i for resource in resources for i in as_list(resource.get("searchInclude")) if as_str(i)}
    return ServerFacts(release(metadata.get("fhirVersion")), frozenset(types) or None, frozenset(includes))


def _unknown_type(resource_type: str) -> re.Pattern[str]:
    """The words that say ``resource_type`` itself is unknown to the server ("Unknown resource
    type 'MedicationRequest'", HAPI's; "Resource type [X] is not supported", "X is not
    supported"), not that a search of it was refused ("Invalid MedicationRequest search: a status
    is required", "Condition: unknown patient", "Unknown resource MedicationRequest/abc", an
    instance; "Search of X is not supported …": the type must begin its sentence): an unknown
    word anywhere near the type's name was read as the server having no such type, and a failed
    search became an empty history."""
    kind = rf"""['"`\[]?{re.escape(resource_type)}['"`\]]?(?![-/\w])"""  # the type, not an instance's id
    named = rf"(?:resource\s+type|resource|type)\s*(?:[:=]\s*)?{kind}"
    return re.compile(
        rf"\b(?:unknown|unsupported|invalid|unrecogni[sz]ed|no\s+such)\s+{named}"
        rf"|\b{named}\s+(?:is\s+)?(?:not\s+(?:supported|known|recogni[sz]ed|valid|found)|unknown|unsupported|invalid)\b"
        rf"|(?:^|[.:;!]\s*){kind}\s+is\s+(?:not\s+supported\b|not\s+a\s+(?:known|supported|valid)\s+resource"
        r"|an?\s+(?:unknown|unsupported|invalid)\s+resource)",
        re.I,
    )


def _outcome_text(outcome: dict[str, Any]) -> str:
    parts = []
    for issue in as_list(outcome.get("issue")):
        details = as_obj(as_obj(issue).get("details"))
        parts += [as_str(as_obj(issue).get("diagnostics")), as_str(details.get("text"))]
        parts += [as_str(as_obj(c).get("display")) for c in as_list(details.get("coding"))]
    return " ".join(p for p in parts if p)


# An outcome's words read, at most: a server's sentence is short, and 4 MB of them took ~1 s to
# search (a performance review), on the event loop.
_LONGEST_READ = 10_000


def no_such_type(status: int | None, outcome: dict[str, Any] | None, resource_type: str) -> bool:
    """Whether a search for ``resource_type`` answered ``status`` with ``outcome`` because the
    server has no such type, by its words alone: a 404 or 400 whose OperationOutcome says the type
    itself is unknown (a search parameter it does not know is another matter). An issue code
    ``not-supported`` naming no type is not enough: it may be the search that is not supported,
    and a required key read as no data hides the critical cards that depend on it. The caller
    still weighs this against the server's statement (``ServerFacts.lists``)."""
    if status not in (400, 404) or outcome is None:
        return False
    text = _outcome_text(outcome)[:_LONGEST_READ]
    if "parameter" in text.lower():
        return False
    return _unknown_type(resource_type).search(text) is not None
