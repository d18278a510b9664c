"""A dosage instruction's dose and rate: units per dose, administrations per day (clinical
specification §1), read from R4 MedicationRequest JSON, each field type-checked where it is read.
An order of several instructions (a taper) is judged by its highest dose and highest frequency;
what it takes a day adds up the instructions taken together; ``facts.sig`` turns these into
planned days.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from cds_service.content.terminology import Drug, Terminology
from cds_service.facts.times import frequency_of, times_of_day, times_over_frequency
from cds_service.facts.together import bounds_period, week_share
from cds_service.facts.together import groups as groups_of
from cds_service.facts.units import MG_FACTOR, counts_units, unit_of
from cds_service.fhir.json import as_int, as_list, as_num, as_obj, as_str, codes_of

DAYS_PER_UNIT = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 30.0,
    "a": 365.0,
    "hour": 1 / 24,
    "hours": 1 / 24,
    "day": 1.0,
    "days": 1.0,
    "week": 7.0,
    "weeks": 7.0,
    "month": 30.0,
    "months": 30.0,
}


def dosages_of(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in as_list(request.get("dosageInstruction")) if isinstance(d, dict)]


def instruction_words(dosage: dict[str, Any]) -> list[str]:
    """The instruction in words, as the prescriber or the EHR wrote it (its sig text, what the
    patient is told): what no code says, and what a change to the codes leaves behind."""
    return [w for w in (dosage.get("text"), dosage.get("patientInstruction")) if type(w) is str and w.strip()]


def coded_dose(dosage: dict[str, Any]) -> bool:
    """Do the instruction's codes give its dose (a quantity or a range, where R4 or STU3 puts it)?"""
    places = [dosage, *(d for d in as_list(dosage.get("doseAndRate")) if isinstance(d, dict))]
    doses = [p.get("doseQuantity") for p in places]
    doses += [as_obj(p.get("doseRange")).get(end) for p in places for end in ("low", "high")]
    return any(isinstance(q, dict) and as_num(q.get("value")) is not None for q in doses)


def repeat_of(dosage: dict[str, Any]) -> dict[str, Any]:
    return as_obj(as_obj(dosage.get("timing")).get("repeat"))


def highest(values: Iterable[float | None]) -> float | None:
    """The highest value that is known: a taper is judged by its highest step (clinical
    specification §1), and a step that does not say (a "then as needed" line) hides no other."""
    known = [v for v in values if v is not None]
    return max(known) if known else None


def running_groups(dosages: list[dict[str, Any]]) -> list[list[int]]:
    """The instructions' places in the list, grouped as they run together (``facts.together``), the
    groups in the order they run: by ``sequence``, then by the start of their bounds period, then
    as listed. What a taper's steps are cut by (the duration update) and counted by (a swap)."""
    keys = groups_of(dosages)
    running: dict[object, list[int]] = {}
    for index in sorted(range(len(dosages)), key=lambda index: _running_order(index, dosages[index])):
        running.setdefault(keys[index], []).append(index)
    return list(running.values())


def _running_order(index: int, dosage: dict[str, Any]) -> tuple[int, str, int]:
    sequence = as_int(dosage.get("sequence"))
    ordinal = sequence if sequence is not None else 1 << 30
    start = bounds_period(dosage).get("start")
    return ordinal, start if isinstance(start, str) else "~", index


def units_per_day(
    dosages: list[dict[str, Any]], units: Iterable[float | None], rates: Iterable[float | None]
) -> float | None:
    """Units taken a day, what a dispensed quantity lasts by: instructions taken together
    (``facts.together``) add up (one tablet in the morning and two at bedtime: three), a taper
    counts its step taking the most; on the days of the week listed, a week's units over seven
    (``week_share``). An instruction that does not say is left out, as ``highest`` leaves it."""
    totals: dict[object, float] = {}
    for key, dosage, per_dose, per_day in zip(groups_of(dosages), dosages, units, rates, strict=False):
        if per_dose is not None and per_day is not None:
            totals[key] = totals.get(key, 0.0) + per_dose * per_day * week_share(dosage)
    return max(totals.values()) if totals else None


def dose_of_step(dosage: dict[str, Any], drug: Drug | None) -> tuple[float | None, float | None]:
    """(mg per dose, units per dose) of one dosage instruction; no dose given is one unit."""
    strength = drug.strength_mg if drug else None
    quantity: dict[str, Any] = {}
    for dose_and_rate in map(as_obj, as_list(dosage.get("doseAndRate"))):
        if isinstance(dose_and_rate.get("doseQuantity"), dict):
            quantity = dose_and_rate["doseQuantity"]
            break
        high = as_obj(dose_and_rate.get("doseRange")).get("high")
        if isinstance(high, dict):
            quantity = high
            break
    value = as_num(quantity.get("value"))
    if value is None:
        return strength, 1.0
    if value <= 0:  # no dose at all is one unit; a dose of nothing or less is not a dose
        return None, None
    unit = unit_of(quantity)
    if unit in MG_FACTOR:
        mg = value * MG_FACTOR[unit]
        return mg, (mg / strength if strength else None)
    if counts_units(quantity):
        return (value * strength if strength else None), value
    return None, None


def nonpositive_amount(request: dict[str, Any]) -> str | None:
    """What in the order is an amount of zero or less, or None: a dose, a rate, a maximum dose, a
    timing's period or duration (R4 decimals, which the model lets be negative), a dispensed
    quantity, a first fill's duration. Read as no value for the facts, but such a draft must not
    be sent back in an update as if it were sound: a quantity of -90 would be the ceiling the update keeps under
    (``rules.safe_update``), a first fill of -5 days kept as sent (``_first_fill_within``)."""
    for dosage in dosages_of(request):
        for dose_and_rate in map(as_obj, as_list(dosage.get("doseAndRate"))):
            for quantity in (dose_and_rate.get("doseQuantity"), as_obj(dose_and_rate.get("doseRange")).get("high")):
                if _at_most_zero(as_obj(quantity).get("value")):
                    return "a dose of zero or less"
            if _at_most_zero(as_obj(dose_and_rate.get("rateQuantity")).get("value")):
                return "a rate of zero or less"
        ceilings = (as_obj(dosage.get("maxDosePerPeriod")).get("numerator"), dosage.get("maxDosePerAdministration"))
        if any(_at_most_zero(as_obj(ceiling).get("value")) for ceiling in ceilings):
            return "a maximum dose of zero or less"
        repeat = repeat_of(dosage)
        if any(_at_most_zero(repeat.get(key)) for key in ("period", "periodMax", "duration", "durationMax")):
            return "a timing period or duration of zero or less"
    dispense = as_obj(request.get("dispenseRequest"))
    first_fill = as_obj(dispense.get("initialFill"))
    for quantity in (dispense.get("quantity"), first_fill.get("quantity")):
        if _at_most_zero(as_obj(quantity).get("value")):
            return "a dispensed quantity of zero or less"
    if _at_most_zero(as_obj(first_fill.get("duration")).get("value")):
        return "a first fill's duration of zero or less"
    return None


def _at_most_zero(value: Any) -> bool:
    number = as_num(value)
    return number is not None and number <= 0


def per_day_of_step(dosage: dict[str, Any], terminology: Terminology, course: bool = False) -> float | None:
    """Administrations a day: the repeat's frequency over its period (its times of day where they
    count more), else the timing code (TID), else its times of day (FHIR Timing: each
    ``timeOfDay`` or ``when`` is a dose). ``course``: how long a quantity lasts, read at the
    frequency where the times count more (``course_rates``)."""
    repeat = repeat_of(dosage)
    period, period_unit = as_num(repeat.get("period")), as_str(repeat.get("periodUnit"))
    if period is not None and period_unit:
        frequency, times = frequency_of(repeat), times_of_day(repeat)
        frequency = (times or 1) if frequency is None else frequency  # 0 is no rate
        period_days = period * DAYS_PER_UNIT.get(period_unit, 0)
        if period_days > 0 and frequency > 0:
            # Times of day beside a daily frequency that says fewer (R4: not to be combined): the
            # larger for the dose rules, the smaller for a course (``times_against_frequency``).
            # Over a longer period they are the dosing day's times: once a week at 08 h is weekly.
            return max(frequency / period_days, float(times) if period_days <= 1 and not course else 0.0)
    code = as_obj(as_obj(dosage.get("timing")).get("code"))
    codings, text = codes_of(code), as_str(code.get("text"))
    for word in [c.code for c in codings] + [text or ""]:
        if word.upper() in terminology.timing_codes:
            return terminology.timing_codes[word.upper()]
    # The text's words before a local code's display, which may be its code set's ("three times
    # daily" beside a display "QD"); Oracle Health's frequency code 696510 is shown as "TID".
    displays = [c.display for c in codings]
    said = (
        rate_in_words([text])
        or _abbreviated(text, terminology)
        or next(filter(None, (_abbreviated(d, terminology) for d in displays)), None)
        or rate_in_words([*displays, *(c.code for c in codings)])
    )
    if said is not None and not times_of_day(repeat):  # words against its times of day: neither read
        return said
    times = times_of_day(repeat) if period is None and not period_unit else 0
    return float(times) if times else None  # a day the period when none is stated


def times_against_frequency(dosage: dict[str, Any]) -> bool:
    """Do an instruction's times of day count more doses a day than its frequency over its period
    says (``facts.times``)? It contradicts itself: read at the larger for a dose, at the smaller
    for a course (``per_day_of_step``), and offered no update, which would write one reading."""
    repeat = repeat_of(dosage)
    unit = as_str(repeat.get("periodUnit") or repeat.get("periodUnits")) or ""  # DSTU2's name too
    return times_over_frequency(repeat, (as_num(repeat.get("period")) or 0) * DAYS_PER_UNIT.get(unit, 0))


def course_rates(
    dosages: list[dict[str, Any]], rates: list[float | None], terminology: Terminology
) -> list[float | None]:
    """Each instruction's administrations a day (``rates``, as ``per_day_of_step`` reads them) for
    how long a quantity lasts: where its times of day count more doses than its frequency, the
    frequency's, the longer course (90 tablets once a day at three times: 90 days, not 30)."""
    return [
        per_day_of_step(d, terminology, course=True) if times_against_frequency(d) else rate
        for d, rate in zip(dosages, rates, strict=True)
    ]


def _abbreviated(words: str | None, terminology: Terminology) -> float | None:
    """A timing abbreviation as EHRs write it: "TID", "T.I.D.", "tid prn" (as needed: the most
    often allowed, as ``frequencyMax`` is read)."""
    if not words or len(words) > 40:
        return None
    key = _AS_NEEDED.sub("", " ".join(words.lower().split())).replace(".", "").strip().upper()
    return terminology.timing_codes.get(key)


# How often, in the words EHRs put in a timing code's text or display where no code of the
# timing-abbreviation set is sent (Epic's "daily", "3 times daily"; Oracle Health's local
# frequency code "q12hr" with its display): the whole phrase only, as needed or not (then the
# most often allowed, as ``frequencyMax`` is read).
# "every 8 hours", "q8h", "q 12 hr": the hours between doses, in group 1 (the swap's label says it so).
EVERY_HOURS = re.compile(r"(?:every|q) ?(\d+) ?(?:h|hr|hrs|hour|hours)")
_TIMES = {"once": 1, "one": 1, "twice": 2, "two": 2, "thrice": 3, "three": 3, "four": 4}
_A_DAY = r"(?:(?:a|per|each) day|daily)"
_RATES = (
    # "HS", "QHS": at bedtime (hora somni), as US sigs abbreviate it.
    (
        re.compile(r"(?:once )?daily|every day|nightly|(?:at )?bedtime|q?hs|every (?:morning|evening|night)"),
        lambda m: 1.0,
    ),
    (re.compile(rf"(\d+|one|two|three|four) times? {_A_DAY}"), lambda m: _count(m[1])),
    (re.compile(rf"(once|twice|thrice) {_A_DAY}"), lambda m: _count(m[1])),
    (EVERY_HOURS, lambda m: 24 / float(m[1]) if float(m[1]) else None),
)
_AS_NEEDED = re.compile(r"\s*(?:,\s*)?(?:as needed(?: for [\w ]+)?|prn(?: [\w ]+)?)$")
# Longer words are no timing phrase ("every 8 hours as needed for muscle spasm of the lower back"
# is 62). The bound keeps the patterns' work small: ``_AS_NEEDED`` tried at every "prn" of 50 kB
# of them backtracked for 41 s, the event loop stalled (an adversarial review).
_LONGEST_RATE_WORDS = 120


def rate_in_words(labels: list[str | None]) -> float | None:
    """Administrations a day a timing's words say ("3 times daily", "every 8 hours", "q12hr",
    "nightly"), or None: a phrase of anything else is no rate."""
    for label in filter(None, labels):  # most timings have no words: nothing to match
        if len(label) > _LONGEST_RATE_WORDS * 4:  # before the split: cheap; below, once spaces are one
            continue
        text = " ".join(label.lower().split())
        if len(text) > _LONGEST_RATE_WORDS:
            continue
        text = _AS_NEEDED.sub("", text)
        for pattern, rate in _RATES:
            if (found := pattern.fullmatch(text)) and (said := rate(found)) and 1 / 30 <= said <= 24:
                return said  # from once a month to hourly: "1000 times daily" or "every 10^20 hours" is no sig
    return None


def _count(word: str) -> float:
    return float(word) if word.isdigit() else float(_TIMES[word])
