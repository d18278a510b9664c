"""A number as a card says it: whole where it is, never in scientific notation, and never read
as a limit it is just over; a count of tablets as a pharmacist names it. What the facts word
their numbers with (``facts.sig``'s planned days, the rules' cards), in a module of its own to
keep ``facts.sig`` to its arithmetic."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from cds_service.facts.units import unit_of


def fmt_number(number: float) -> str:
    """A whole number as one, past a billion "over 1,000,000,000"; below 0.1, to three significant
    digits, below a millionth "under 0.000001" (no scientific notation: 5e-324 mg read "4.94e-324
    mg"); else to two decimals, or the fewest more that do not read as whole, so that a duration
    just over a limit never reads as the limit itself (504.1 hours: 21.004 days), nor as a number
    not sent (21.0000000001: "21.01")."""
    if not math.isfinite(number):  # JSON has none (1e400 is a 400): never a 500 here all the same
        return str(number)
    if abs(number) >= 1e9:  # a count no order means: 1e300 tablets was a 301-digit card line
        return "over 1,000,000,000" if number > 0 else "under -1,000,000,000"
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


# A number past it is none a sig means (``finite``).
_PLAUSIBLE = 1e6


def finite(number: float | None) -> float | None:
    """Absurd input (1e308 tablets a day) counts as unknown, not as an infinite duration."""
    return number if number is not None and math.isfinite(number) and abs(number) < _PLAUSIBLE else None


# A century of days: a planned duration past it is said as such, not counted out. Read as a number,
# a supply of 1e308 days was a 309-digit card, and a course the calendar cannot end (1,000,000
# days, "2800 years") was read as no duration at all: asked for one, not warned of 2–3 weeks.
CENTURY_DAYS = 36525.0
# What a longer duration is read as (a day past the century): still a course of days, over every
# limit a rule sets, ended within the calendar (a history's course from 2026 ends in 2126).
PAST_A_CENTURY = CENTURY_DAYS + 1


def days_said(days: float) -> str:
    """ "1 day", "30 days" (never "1 days"), or "over 100 years" past a century (``CENTURY_DAYS``)."""
    return "over 100 years" if days > CENTURY_DAYS else f"{fmt_number(days)} day{'' if days == 1 else 's'}"


def supply_said(days: float) -> str:
    """ "a 30-day supply", or "a supply of over 100 years" (``days_said``)."""
    return f"a supply of {days_said(days)}" if days > CENTURY_DAYS else f"a {fmt_number(days)}-day supply"


# The units a dispensed count is read in, as a pharmacist names them ("90 tablets", not "90 units").
_COUNTED = {"tablet": "tablet", "tablets": "tablet", "tab": "tablet", "tabs": "tablet", "tbl": "tablet"}
_COUNTED |= {"capsule": "capsule", "capsules": "capsule", "pill": "pill", "pills": "pill"}


def counted(value: float, quantity: dict[str, Any]) -> str:
    """ "90 tablets"; a count with no unit stays "90 units" (what it counts is not said)."""
    noun = _COUNTED.get(unit_of(quantity), "unit")
    return f"{fmt_number(value)} {noun}{'' if value == 1 else 's'}"
