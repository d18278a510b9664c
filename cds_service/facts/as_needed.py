"""Whether an instruction is taken as needed, as its codes say and as its words alone say: the
swap and the updates keep the first, and a draft whose words alone say it gets no update
(``facts.orders``), for no code tells what the words mean; and whether a history order's end is
only the soonest its as-needed supply runs out (``as_needed_supply``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cds_service.facts.dose import dosages_of, instruction_words
from cds_service.facts.sig import bounded_days
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


def as_needed_supply(request: dict[str, Any]) -> bool:
    """Is the order taken as needed, with no dosage bounds saying how long? Then its days are its
    supply over the most doses a day it allows (§1's ``frequencyMax``): the soonest that supply
    can run out, not when it does (30 tizanidine tablets up to every 8 hours last 10 days taken at
    the most, weeks as most are taken). Bounds are the prescriber's own span, and end it."""
    return any(as_needed(dosage) for dosage in dosages_of(request)) and bounded_days(request) is None


def _says(words: Sequence[str | None]) -> bool:
    return any(_SAYS_AS_NEEDED.search(" ".join(said.lower().split())) for said in words if said)


_SAYS_AS_NEEDED = re.compile(r"\b(?:p\.?r\.?n\b|as[- ]needed\b|when needed\b|as required\b)")
