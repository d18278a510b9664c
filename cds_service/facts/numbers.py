"""A number as a card says it: whole where it is, never in scientific notation, and never read
as a limit it is just over; a count of tablets as a pharmacist names it. What the facts word
their numbers with (``facts.sig``'s planned days, the rules' cards), in a module of its own to
keep ``facts.sig`` to its arithmetic."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from cds_service.facts.dose import unit_of


def fmt_number(number: float) -> str:
    """A whole number as one; below 0.1, to three significant digits, below a millionth "under
    0.000001" (no scientific notation: 5e-324 mg read "4.94e-324 mg"); else to two decimals, or the
    fewest more that do not read as whole, so that a duration just over a limit never reads as the
    limit itself (504.1 hours: 21.004 days), nor as a number not sent (21.0000000001: "21.01")."""
    if not math.isfinite(number):  # read as unknown later (``_sensible``); never a 500 here
        return str(number)
    if float(number).is_integer():
        return str(int(number))
    if abs(number) < 1e-6:
        return "under 0.000001" if number > 0 else "over -0.000001"
    if abs(number) < 0.1:  # three significant digits: 1e-6 mg read "0.01 mg" (make fuzz)
        return format(Decimal(f"{number:.3g}"), "f")
    places = 2  # one more until the text is not whole: a float that is not has a place that says so
    while "." not in (text := f"{number:.{places}f}".rstrip("0").rstrip(".")):
        places += 1
    return text


# The units a dispensed count is read in, as a pharmacist names them ("90 tablets", not "90 units").
_COUNTED = {"tablet": "tablet", "tablets": "tablet", "tab": "tablet", "tabs": "tablet", "tbl": "tablet"}
_COUNTED |= {"capsule": "capsule", "capsules": "capsule", "pill": "pill", "pills": "pill"}


def counted(value: float, quantity: dict[str, Any]) -> str:
    """ "90 tablets"; a count with no unit stays "90 units" (what it counts is not said)."""
    noun = _COUNTED.get(unit_of(quantity), "unit")
    return f"{fmt_number(value)} {noun}{'' if value == 1 else 's'}"
