"""The units a quantity is read in: a count of tablets, a mass, a volume, or none of these, and
how a unit's code or words are compared. A module of its own to keep ``facts.dose`` to its size."""

from __future__ import annotations

from typing import Any

from cds_service.fhir.json import as_str

# Units a dose is counted in (clinical specification §1), compared as ``unit_word`` spells them.
# Not "each" or UCUM's "1": in a dispensed quantity they are as often a package (one bottle, one
# blister pack) as a tablet (``EACH_UNITS``).
COUNT_UNITS = {"pill", "pills", "tablet", "tablets", "tbl", "tab", "tabs", "capsule", "capsules"}
# Units as often of one tablet as of one package: UCUM's "1" and "{each}", NCPDP's "EA". All a
# dispensed unit can be, of those neither a count, a mass nor a volume, that is
# no container of tablets.
EACH_UNITS = frozenset({"1", "each", "ea"})
MG_FACTOR = {"mg": 1.0, "g": 1000.0, "mcg": 0.001, "ug": 0.001}
# A volume, in mL: a dose no tablet count can be read from, a dispensed amount no tablet count compares with.
ML_FACTOR = {"ml": 1.0, "l": 1000.0}
VOLUME_UNITS = frozenset(ML_FACTOR)
# Units whose code the rules read.
_UNITS_KNOWN = frozenset({*COUNT_UNITS, *MG_FACTOR, *VOLUME_UNITS})


def unit_word(text: Any) -> str:
    """A unit's code or words as compared: lower case, without braces, spaces or a plural's
    "(s)". Spelt "tablet " or "tablet(s)", 30 tablets were no count of tablets, and "Bottle(s)"
    or "bottle " no bottle."""
    word = (as_str(text) or "").strip().strip("{}").strip().lower()
    return word.removesuffix("(s)").strip()


def unit_of(quantity: dict[str, Any]) -> str:
    """The quantity's unit: its code, or its words where the code is none the rules know. NCPDP
    codes its units by NCI concept ("C48542", shown as "Tablet"), and a UCUM "1" may be shown
    as "tablet": a 90-tablet supply so coded read as a duration not said."""
    code = unit_word(quantity.get("code"))
    if code in _UNITS_KNOWN:
        return code
    unit = unit_word(quantity.get("unit"))
    return unit if unit in _UNITS_KNOWN or not code else code


def counts_units(quantity: dict[str, Any]) -> bool:
    """Is a quantity a count of units (tablets)? One with no unit is, as §1 reads a dose; "each"
    and UCUM's "1" are not (``COUNT_UNITS``)."""
    unit = unit_of(quantity)
    return unit in COUNT_UNITS or unit == ""


def each_or_none(quantity: dict[str, Any]) -> bool:
    """Are the quantity's code and words, those it gives, all "each" (``EACH_UNITS``) or none? "30
    each" coded UCUM "1" is; "1 Bottle" coded "1" is not, nor "1 btl": a container by its words."""
    return {unit_word(quantity.get("code")), unit_word(quantity.get("unit"))} - {""} <= EACH_UNITS
