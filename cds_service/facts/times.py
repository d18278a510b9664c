"""Times of day in a FHIR Timing (``timeOfDay``, ``when``): the doses a day they count, and
whether they count more than the frequency beside them (R4: the two are not to be combined).
Read by ``facts.dose``'s administrations a day; a module of its own to keep that one to its size."""

from __future__ import annotations

from typing import Any

from cds_service.fhir.json import as_list, as_num, as_str

# R4 EventTiming's meal codes that name no meal (v3 TimingEvent C, AC, PC): "with meals", "before
# meals", "after meals" say when, not how many. A ``when`` that lists one says no count of doses
# (three times a day with meals had read as once a day, against its frequency). CM, ACM, PCV...
# name one meal each: a dose each, as MORN or HS is.
AT_ANY_MEAL = frozenset({"C", "AC", "PC"})


def times_of_day(repeat: dict[str, Any]) -> int:
    """Doses a day its ``timeOfDay`` or ``when`` entries say (FHIR Timing); 0 when they say none,
    as a ``when`` naming no meal in particular (``AT_ANY_MEAL``) says none."""
    if "timeOfDay" not in repeat and "when" not in repeat:  # the common case, at no cost
        return 0
    if times := len(as_list(repeat.get("timeOfDay"))):
        return times
    when = as_list(repeat.get("when"))
    return 0 if any((as_str(code) or "").upper() in AT_ANY_MEAL for code in when) else len(when)


def frequency_of(repeat: dict[str, Any]) -> float | None:
    """The repeat's doses a period: its ``frequencyMax`` (as needed: the most often allowed), else
    its ``frequency``."""
    frequency = as_num(repeat.get("frequencyMax"))
    return as_num(repeat.get("frequency")) if frequency is None or frequency <= 0 else frequency


def times_over_frequency(repeat: dict[str, Any], period_days: float) -> bool:
    """Do its times of day count more doses a day than its frequency over its period (of
    ``period_days``) says? Once a day at 08, 14 and 20 h contradicts itself. Fewer times than the
    frequency (twice a day, one time listed) is a common shorthand: the frequency stands. Over a
    period longer than a day the times are the dosing day's, no rate of their own."""
    times, frequency = times_of_day(repeat), frequency_of(repeat)
    daily = 0 < period_days <= 1
    return bool(times and frequency and frequency > 0 and daily and times > frequency / period_days + 1e-9)
