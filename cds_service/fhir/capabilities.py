"""What a FHIR server says of itself: its /metadata, and an OperationOutcome saying it has no such resource type.

The prefetch is fetched in the server's own FHIR version (a DSTU2 server has ``MedicationOrder``,
not ``MedicationRequest``), and a search for a type the server does not have is no data, not
a failed fetch. Both are read here from the server's own answers, in any version.
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


# An OperationOutcome that says the resource type is unknown to the server ("Unknown resource
# type 'MedicationRequest'", "Resource type 'X' is not supported"), not that a search parameter is.
_UNKNOWN_WORDS = re.compile(r"\b(?:unknown|unsupported|not (?:supported|known|recogni[sz]ed)|invalid|no such)\b", re.I)


def _outcome_text(outcome: dict[str, Any]) -> str:
    parts = []
    for issue in as_list(outcome.get("issue")):
        details = as_obj(as_obj(issue).get("details"))
        parts += [as_str(as_obj(issue).get("diagnostics")), as_str(details.get("text"))]
        parts += [as_str(as_obj(c).get("display")) for c in as_list(details.get("coding"))]
    return " ".join(p for p in parts if p)


def no_such_type(status: int | None, outcome: dict[str, Any] | None, resource_type: str) -> bool:
    """Whether a search for ``resource_type`` answered ``status`` with ``outcome`` because the
    server has no such type: 404 or 400, naming the type as unknown (a search parameter it does
    not know is another matter), or a 404 whose issue is ``not-supported``."""
    if status not in (400, 404) or outcome is None:
        return False
    text = _outcome_text(outcome)
    if "parameter" in text.lower():
        return False
    if resource_type.lower() in text.lower() and _UNKNOWN_WORDS.search(text):
        return True
    codes = {as_str(as_obj(issue).get("code")) for issue in as_list(outcome.get("issue"))}
    return status == 404 and "not-supported" in codes
