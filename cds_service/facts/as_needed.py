"""Whether an instruction is taken as needed, as its codes say and as its words alone say: the
swap and the updates keep the first, and a draft whose words alone say it gets no update
(``facts.orders``), for no code tells what the words mean."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cds_service.facts.dose import instruction_words
from cds_service.fhir.json import as_obj, as_str, codes_of


def as_needed(dosage: dict[str, Any]) -> bool:
    """Is the instruction taken as needed? As its code says (``asNeededBoolean``; a reason is one),
    else its timing code's words ("TID PRN"), which the swap rewrites to its cap (it had written a
    three-times-a-day-as-needed order as one to take three times a day). Not the sig's words:
    "call your doctor as needed" is no as-needed dose (``says_as_needed``)."""
    if "asNeededBoolean" in dosage:
        return dosage["asNeededBoolean"] is True
    if isinstance(dosage.get("asNeededCodeableConcept"), dict):
        return True
    code = as_obj(as_obj(dosage.get("timing")).get("code"))
    return _says([as_str(code.get("text")), *(c.display for c in codes_of(code))])


def says_as_needed(dosage: dict[str, Any]) -> bool:
    """Do the instruction's words alone say "as needed" or "prn"? Whether they mean its dose ("1 tab
    tid prn") or not ("call your doctor as needed", "do not use prn") no code says: an update,
    which leaves the words out, is not offered (``facts.orders``)."""
    coded = "asNeededBoolean" in dosage or "asNeededCodeableConcept" in dosage or as_needed(dosage)
    return not coded and _says(instruction_words(dosage))


def _says(words: Sequence[str | None]) -> bool:
    return any(_SAYS_AS_NEEDED.search(" ".join(said.lower().split())) for said in words if said)


_SAYS_AS_NEEDED = re.compile(r"\b(?:p\.?r\.?n\b|as[- ]needed\b|when needed\b|as required\b)")
