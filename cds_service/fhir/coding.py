"""Codings as the rules compare them: a code system and a code, in one normal form.

Real data spells the same code differently (ICD-10-CM with or without its dot, HCPCS under
two system URIs, a system as its OID); ``code_key`` is the one place that decides what counts as the same code.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
# Other spellings of the same code systems seen in real data: HCPCS's http URI, and each
# system's HL7 OID (a C-CDA conversion keeps them; a critical card was lost to one).
_SYSTEM_ALIASES = {
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": HCPCS,
    "urn:oid:2.16.840.1.113883.6.88": RXNORM,
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM,
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "urn:oid:2.16.840.1.113883.6.12": CPT,
    "urn:oid:2.16.840.1.113883.6.285": HCPCS,
}


class Code(NamedTuple):
    """A coding. A tuple, not a dataclass: a 500-entry history makes thousands of them per call."""

    system: str
    code: str
    display: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return code_key(self.system, self.code)


def on_one_line(codes: Iterable[Code]) -> tuple[Code, ...]:
    """Codes as a card shows them: a line break in a record's code or display would begin a
    Markdown block of its own (a heading, a list item) in a detail the service wrote. For codes a
    card may name (a condition's, a service order's, a reason's), not every code read."""
    return tuple(
        c if _printable(c) else Code(c.system, _joined(c.code), c.display and _joined(c.display)) for c in codes
    )


def one_line(words: str) -> str:
    """The record's words as a card shows them: a line break in a Markdown detail would begin a
    block of its own. Blank words come back empty, for the caller's stand-in."""
    return " ".join(words.split())


def _printable(code: Code) -> bool:
    return code.code.isprintable() and (code.display is None or code.display.isprintable())


def _joined(words: str) -> str:
    return one_line(words) or words


# Real histories repeat the same few hundred codes; the cache bounds the work and the memory.
@lru_cache(maxsize=16384)
def code_key(system: str, code: str) -> tuple[str, str]:
    """The form codes are compared in: ICD-10-CM matches with or without its dot, and it and
    HCPCS in either case (their letters are capitals: "l0637" is L0637)."""
    system = system.strip().rstrip("/")
    system = _SYSTEM_ALIASES.get(system, system)
    code = code.strip()
    if system == ICD10CM:
        code = code.replace(".", "").upper()
    elif system == HCPCS:
        code = code.upper()
    return system, code
