"""Reading FHIR JSON as it comes, each field type-checked where it is read.

Validating a resource into a fhir.resources model costs over 100 µs, and a 500-entry history
would spend most of a call on it; the facts are read from the JSON itself instead, and a field
of the wrong type counts as absent. A single object where FHIR has an array is read as one
element (the CDS Hooks sandbox sends them).
"""

from __future__ import annotations

import calendar
import copy
import math
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from itertools import repeat
from typing import Any

import orjson

from cds_service.fhir.coding import Code
from cds_service.fhir.resource_types import NO_TYPE, RESOURCE_TYPES

# FHIR resources nest about ten deep; a CDS Hooks envelope adds five. Far below what the JSON
# parser or the FHIR models could recurse through.
MAX_DEPTH = 64


def copy_json(value: Any) -> Any:
    """A deep copy of JSON (a draft a suggestion changes): through orjson, several times faster
    than ``copy.deepcopy``, which walks it in Python; ``deepcopy`` for what orjson cannot write."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:
        return copy.deepcopy(value)


def bundle_entries(bundle: Any) -> list[Any]:
    """A Bundle's ``entry``, or the one entry a client sent as an object: read as one, as every
    other array sent as a single object is (a critical card must not be lost to the shape)."""
    entries = bundle.get("entry") if type(bundle) is dict else None
    if type(entries) is list:
        return entries
    return [entries] if type(entries) is dict else []


def bundle_resources(value: Any) -> Iterator[dict[str, Any]]:
    """Resources in a prefetch value: a Bundle's entries, or a single resource."""
    if not isinstance(value, dict):
        return
    if value.get("resourceType") == "Bundle":
        for entry in bundle_entries(value):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                yield resource
    elif isinstance(value.get("resourceType"), str):
        yield value


def reference_of(resource: dict[str, Any]) -> str:
    """``Condition/c1``: how a history's resource is named on a card and in the card record."""
    return f"{resource['resourceType']}/{resource.get('id')}"


def resource_list(value: Any) -> tuple[list[dict[str, Any]], frozenset[str]]:
    """``bundle_resources`` as a list, and the resource types among them: a prefetch key's every
    resource, and what the checks after it ask of them all (an OperationOutcome? a Patient?)
    without another pass over them. A pass over a history just parsed costs a cache miss or two
    an entry (~0.4 µs, ten times its instructions): the types come with the listing's. The
    common case (every entry a resource with a type) is read in C, with no Python step an
    entry; anything else is read one by one."""
    if type(value) is dict and value.get("resourceType") == "Bundle":
        entries = bundle_entries(value)
        try:
            resources: list[Any] = list(map(dict.get, entries, repeat("resource")))  # TypeError: an entry not a dict
            kinds: set[Any] = set(map(dict.get, resources, repeat("resourceType")))  # or a resource not
            if all(type(kind) is str for kind in kinds):  # a few types, not an entry each
                return resources, frozenset(kinds)
        except TypeError:
            pass
    resources = list(bundle_resources(value))
    return resources, kinds_of(resources)


def unread_entry(
    bundle: dict[str, Any], listed: tuple[list[dict[str, Any]], frozenset[str]] | None = None
) -> tuple[str, str] | None:
    """Where a Bundle holds what is no resource, and what belongs there: ``entry`` that is no
    array (or one object), an entry that is no object, or one whose ``resource`` is no resource
    with its type, or whose type is no FHIR type (``RESOURCE_TYPES``: "medicationrequest" is none).
    Read as no data, a history of them hid its hepatitis, or its MAO inhibitor, from the checks
    with no word. ``listed``: what ``resource_list`` found (the resources, their types), so that a
    Bundle it listed whole, of FHIR types, costs no second pass. None when every entry holds one."""
    entries = bundle.get("entry")
    if entries is not None and type(entries) not in (list, dict):
        return "entry", "must be an array of entries, each holding a FHIR resource"
    found = bundle_entries(bundle)
    if listed is not None and len(listed[0]) == len(found) and listed[1] <= RESOURCE_TYPES:
        return None
    for index, entry in enumerate(found):
        where = f"entry[{index}]" if type(entries) is list else "entry"
        if type(entry) is not dict:
            return where, "must be an entry holding a FHIR resource"
        resource = entry.get("resource")
        if type(resource) is not dict or type(resource.get("resourceType")) is not str:
            return f"{where}.resource", "must be a FHIR resource with its resourceType"
        if resource["resourceType"] not in RESOURCE_TYPES:
            return f"{where}.resource.resourceType", NO_TYPE
    return None


def kinds_of(resources: list[dict[str, Any]]) -> frozenset[str]:
    """The resource types among ``resources`` (each a resource with a type)."""
    return frozenset(resource["resourceType"] for resource in resources)


def full_urls(bundle: Any) -> dict[str, Any]:
    """A Bundle's resources by their entry's ``fullUrl``."""
    entries = (entry for entry in bundle_entries(bundle) if type(entry) is dict)
    return {entry["fullUrl"]: entry.get("resource") for entry in entries if type(entry.get("fullUrl")) is str}


# Bundles that answer (or ask) several requests, a search's Bundle in each entry.
_BATCHES = {"batch", "batch-response", "transaction", "transaction-response"}


def is_batch(bundle: dict[str, Any]) -> bool:
    """Is ``bundle`` a batch's (its type says so, or its first entry is a Bundle, as every entry
    of a batch's answer is), not a search's own? The first entry only: this runs on every
    prefetch, and a history may be thousands of entries."""
    entries = bundle_entries(bundle)
    first = entries[0].get("resource") if entries and type(entries[0]) is dict else None
    kind = bundle.get("type")
    return (type(kind) is str and kind in _BATCHES) or (type(first) is dict and first.get("resourceType") == "Bundle")


def failed_outcome(resources: list[dict[str, Any]], kinds: frozenset[str]) -> bool:
    """Does a search's answer carry an OperationOutcome saying it failed (an issue of severity
    error or fatal)? A searchset may (``search.mode`` "outcome"): it then answered in part.
    ``kinds``: the types among ``resources`` (``resource_list``), so that most answers, with no
    OperationOutcome, are not walked again."""
    if "OperationOutcome" not in kinds:
        return False
    return any(
        resource.get("resourceType") == "OperationOutcome"
        and any(as_obj(issue).get("severity") in ("error", "fatal") for issue in as_list(resource.get("issue")))
        for resource in resources
    )


def codes_of(concept: Any) -> list[Code]:
    """Codes of a raw CodeableConcept, or of a list of them (single objects tolerated).

    The hottest function of a large prefetch (every history entry passes here), hence ``type``
    checks rather than ``isinstance``: JSON parsing yields exact dicts, lists and strs."""
    concepts = concept if type(concept) is list else (concept,)
    found = []
    for item in concepts:
        if type(item) is not dict:
            continue
        codings = item.get("coding")
        for coding in codings if type(codings) is list else (codings,):
            if type(coding) is dict:
                system, code = coding.get("system"), coding.get("code")
                if type(system) is str and (type(code) is str or (type(code) is int and (code := str(code)))):
                    display = coding.get("display")  # (an int: an RxNorm code sent as a JSON number)
                    found.append(_new_code(Code, (system, code, display if type(display) is str else None)))
    return found


# ``Code(...)`` through its generated ``__new__`` costs twice the tuple it makes (240 ns against 110).
_new_code = tuple.__new__


def as_list(value: Any) -> list[Any]:
    """A JSON array, with a single object where an array belongs read as one element (the sandbox does that)."""
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def as_obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# FHIR's decimal (and integer) syntax: what a number sent as a string may be.
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,30})(?:\.[0-9]{1,30})?(?:[eE][+-]?[0-9]{1,3})?")
# FHIR's integer and unsignedInt: 32 bits.
_INT_MAX = 2**31 - 1


def as_num(value: Any) -> float | None:
    """A JSON number as a float, or a number sent as a string ("3"), read as the R4 model reads
    it (read as absent, it became a default: once a day, one unit); anything else (booleans,
    words, an infinite value) is no number."""
    if type(value) is int or type(value) is float:
        return float(value)
    if type(value) is str and _DECIMAL.fullmatch(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def as_int(value: Any) -> int | None:
    """A FHIR integer, also sent as a whole decimal (2.0) or a string ("2"); None beyond 32 bits."""
    number = as_num(value)
    return int(number) if number is not None and number.is_integer() and abs(number) <= _INT_MAX else None


def to_date(value: Any) -> date | None:
    """A FHIR date, dateTime or partial date ("2024", "2024-03") as a date: a dateTime's own
    (local) date, as the prescriber wrote it. Read as the UTC day instead, a course written from
    00:00 to 23:59 of 21 local days spanned 22 in New York and in Paris, and an end in the small
    hours east of UTC fell a day earlier (a MAO inhibitor's washout read as over)."""
    if type(value) is str:
        # The common case, a full date (or a dateTime's), read in C: ``date.fromisoformat`` takes
        # a 10-character string with a dash at [7] only as YYYY-MM-DD of ASCII digits, which is
        # what the reading below makes of it too; anything else is read below (a tenth of the cost).
        day = value[:10]
        if len(day) == 10 and day[7] == "-":
            try:
                return _from_iso(day)
            except ValueError:
                pass
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        parts = value[:10].split("-")
        try:
            return date(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1, int(parts[2]) if len(parts) > 2 else 1)
        except (ValueError, IndexError, OverflowError):  # OverflowError: a year of eleven digits
            return None
    return None


_from_iso = date.fromisoformat


def to_end_date(value: Any) -> date | None:
    """The last day a FHIR ``Period.end`` covers ("the end value includes any matching
    date/time"): a partial date ends on the last day of its month ("2026-11": the 30th) or
    year ("2026": 31 December), not on its first."""
    day = to_date(value)
    return last_day_covered(day, date_parts(value)) if day is not None else None


def period_last_day(period: dict[str, Any]) -> date | None:
    """The last day of use a planned Period gives (``to_end_date``), but for one that ends at the
    very time of day it starts: the day before its end's. EHRs write 21 days as 06:00Z to 06:00Z
    three weeks on, which touches a 22nd date; no dose is due at the instant a course is over."""
    start, end = period.get("start"), period.get("end")
    last = to_end_date(end)
    if last is None or type(start) is not str or type(end) is not str or len(start) <= 10 or len(end) <= 10:
        return last
    try:
        begins, ends = datetime.fromisoformat(start), datetime.fromisoformat(end)
        later = ends > begins
    except (ValueError, TypeError, OverflowError):  # not whole dateTimes, or one zoned and one not
        return last
    return last - timedelta(days=1) if later and ends.time() == begins.time() else last


def date_parts(value: Any) -> int:
    """How much of a date was written: 1 the year alone, 2 the month, 3 the day (a dateTime, or
    anything not a string, too)."""
    return min(value[:10].count("-"), 2) + 1 if type(value) is str else 3


def last_day_covered(day: date, parts: int) -> date:
    """The last day a date written to ``parts`` (``date_parts``) covers, ``day`` its first."""
    if parts == 1:
        return date(day.year, 12, 31)
    if parts == 2:
        return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
    return day


def too_deep(value: Any) -> bool:
    """Does ``value`` nest deeper than MAX_DEPTH? Depth first, containers only, and never
    deeper than the bound itself: half the time of a walk level by level (5 µs for a small
    call's body, issue 17)."""
    return (type(value) is dict or type(value) is list) and not _within(value, MAX_DEPTH - 1)


def _within(container: dict[str, Any] | list[Any], levels: int) -> bool:
    """Do the containers in ``container`` nest at most ``levels`` deeper?"""
    for child in container.values() if isinstance(container, dict) else container:
        kind = type(child)
        if (kind is dict or kind is list) and (levels == 0 or not _within(child, levels - 1)):
            return False
    return True
