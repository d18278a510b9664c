"""What several rules share: the drug classes they ask about, and the suggestions they make."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from pydantic import Field

from cds_service.content.terminology import Terminology
from cds_service.facts.as_needed import as_needed
from cds_service.facts.dose import EVERY_HOURS, dosages_of, repeat_of, units_per_day
from cds_service.facts.model import Order, PatientContext
from cds_service.facts.numbers import days_said, fmt_number
from cds_service.facts.together import weekdays
from cds_service.fhir.json import as_num, as_obj, as_str, codes_of
from cds_service.rules import Proposal, RuleConfig
from cds_service.rules.actions import delete, update
from cds_service.rules.product_swap import capped_rates, with_product
from cds_service.rules.sublingual_start import once_daily, start_tablets

START_PRODUCT = "828320"  # cyclobenzaprine hydrochloride 5 MG Oral Tablet (RxNorm SCD)
MAX_PER_DAY = 3.0
_TIMES_A_DAY = {1.0: " once a day", 2.0: " twice a day", 3.0: " three times a day"}


def is_cyclobenzaprine(order: Order, terminology: Terminology) -> bool:
    return terminology.is_medication("cyclobenzaprine", order.drug)


def is_muscle_relaxant(order: Order, terminology: Terminology) -> bool:
    return terminology.is_medication("muscle-relaxant", order.drug)


# Back pain therapies of little value (``low-value-back-therapy``), of no use for a red flag's
# cause either (``back-pain-red-flag``).
BACK_THERAPIES = ("lumbar-orthosis", "tens", "traction")


def back_therapy(order: Order, terminology: Terminology) -> str | None:
    """The therapy a ServiceRequest or DeviceRequest orders (ProcedureRequest: STU3's), or None."""
    if not order.reference.startswith(("ServiceRequest/", "DeviceRequest/", "ProcedureRequest/")):
        return None
    return next((t for t in BACK_THERAPIES if terminology.in_concept(t, order.codes)), None)


def remove(order: Order, *, label: str = "suggestion", recommended: bool = False) -> tuple[Proposal, ...]:
    return (Proposal(actions=(delete(order),), label=label, recommended=recommended),)


class StartDoseConfig(RuleConfig):
    """The start doses of a rule that offers cyclobenzaprine's start dose (older adults, mild
    hepatic impairment): one declaration, so that both have the same bounds and read an order the same way."""

    # No lower than the tablets the swap offers (5 mg, 2.8 mg): it would offer what is ordered. No
    # higher than the labels' highest dose (10 mg; 5.6 mg sublingual): a "start dose" no order is
    # above drops the swap without a word (so did inf, which TOML reads as a number).
    start_dose_mg: float = Field(default=5.0, ge=5.0, le=10.0)
    sublingual_start_dose_mg: float = Field(default=2.8, ge=2.8, le=5.6)

    def above_start_dose(self, order: Order) -> str | None:
        """Why an order may exceed the start dose of its product: "extended-release",
        "sublingual-high-dose" (over its start dose, or more than once a day), "high-dose" (over 5 mg),
        "dose-unknown" (in mL, or of a strength not known: not silence), or None when it does not.
        The sublingual label's low dose is a dose and a frequency (2.8 mg once daily): by the
        dose alone, 2.8 mg three times a day was "the low dose". How often not read leaves the
        dose to judge, as for the tablets (an incomplete draft; the product is taken once daily)."""
        if order.drug is not None and order.drug.extended_release:
            return "extended-release"
        if order.dose_mg is None:
            return "dose-unknown"
        if order.drug is not None and order.drug.sublingual:
            above = order.dose_mg > self.sublingual_start_dose_mg or more_than_daily(order)
            return "sublingual-high-dose" if above else None
        return "high-dose" if order.dose_mg > self.start_dose_mg else None


def more_than_daily(order: Order) -> bool:
    """Taken more than once a day at most (§1's reading: ``frequencyMax``, an as-needed code's
    most, a taper's most often step); not when how often is not read."""
    per_day = order.per_day
    return per_day is not None and per_day > 1 and not math.isclose(per_day, 1)


def dose_and_how_often(order: Order) -> str:
    """ "2.8 mg three times a day", "2.8 mg up to twice a day" (a ``frequencyMax``, as needed, a
    taper's steps: the most often it allows), "5.6 mg per dose" (how often not read): the
    sublingual cards weigh both against the label's 2.8 mg once daily, and a card that gave the
    dose alone called 2.8 mg three times a day the low dose."""
    dose = f"{dose_said(order)} mg"
    if order.per_day is None:
        return f"{dose} per dose"
    steps = dosages_of(order.r4)
    ranged = len(set(order.step_per_day) - {None}) > 1 or any(
        as_needed(step) or not repeat_of(step).keys().isdisjoint(_RANGED) for step in steps
    )
    return f"{dose} {'up to ' if ranged else ''}{_times_a_day(order.per_day)}"


# A timing that gives the most often it allows, which §1 reads as its rate.
_RANGED = ("frequencyMax", "periodMax")


def _times_a_day(per_day: float) -> str:
    """ "once a day", "twice a day", "4 times a day", "once every 2 days", "1.5 times a day"."""
    if (said := _TIMES_A_DAY.get(round(per_day, 6))) is not None:
        return said.strip()
    every = round(1 / per_day, 6)
    if per_day < 1 and every.is_integer():
        return f"once every {fmt_number(every)} days"
    return f"{fmt_number(per_day)} times a day"


def start_dose_switch(
    order: Order, terminology: Terminology, limits: StartDoseConfig
) -> tuple[Proposal, dict[str, str]]:
    """The draft at its start dose, and the facts to say so: oral cyclobenzaprine becomes one 5 mg
    tablet no more than three times a day; the sublingual product stays, at the site's start dose
    (``limits.sublingual_start_dose_mg``: one 2.8 mg tablet, the label's in older adults and mild
    hepatic impairment, unless the site says more) once a day, the dose its card says
    (``low_dose_mg``). A dose change: the pipeline adds the other cards' limits (the duration) to it."""
    facts = {
        "drug": order.drug.name if order.drug else "",
        "dose_mg": dose_said(order),
    }
    if order.drug is not None and order.drug.sublingual:  # the sublingual stays: no product to swap to
        strength = terminology.sublingual_mg(order.drug)
        tablets = start_tablets(order, strength, limits.sublingual_start_dose_mg)
        resource, product = once_daily(order, tablets), None
        said = f"{fmt_number(strength)} mg tablet" if strength else "tablet"
        facts["low_dose_mg"] = fmt_number(tablets * strength if strength else limits.sublingual_start_dose_mg)
        facts["low_dose"] = (
            f"{tablets} sublingual {said}{'s' if tablets > 1 else ''} once a day at bedtime{_as_needed_said(resource)}"
        )
    else:
        product = terminology.products[START_PRODUCT]
        steps = dosages_of(order.resource)
        frequency = _how_often(steps, capped_rates(order, steps, MAX_PER_DAY))
        resource = with_product(order, product, max_per_day=MAX_PER_DAY)
        facts["low_dose"] = f"cyclobenzaprine 5 mg tablet, 1 tablet{frequency}{_as_needed_said(resource)}"
    return Proposal(actions=(update(resource),), recommended=True, dose_change=True, product=product), facts


def _as_needed_said(resource: dict[str, Any]) -> str:
    """ "as needed" where the update's instructions are (``facts.dose.as_needed``), so that the
    label says the order's "up to" and not a dose every day; where only some are, that some are."""
    needed = [as_needed(dosage) for dosage in dosages_of(resource)]
    if needed and all(needed):
        return " as needed"
    return ", some doses as needed" if any(needed) else ""


def _how_often(steps: list[dict[str, Any]], rates: list[float | None]) -> str:
    """The swap's timing in a pharmacist's words, as the update writes it: one given as a period
    ("every 8 hours") and kept by the swap is said so, not "three times a day", a schedule of its
    own (waking hours); a rate rewritten to the cap, or given a day, is its times a day; and its
    days where its instructions all list the same days of the week (" three times a day on Mon,
    Wed, Fri"): its units a day are a week's over seven, a dosing day's times that share of them."""
    per_day = units_per_day(steps, [1.0] * len(steps), rates)
    if per_day is None:
        return ""
    listed = {weekdays(step) for step in steps}
    days = next(iter(listed)) if len(listed) == 1 else ()
    daily = round(per_day * 7 / len(days), 9) if days else per_day
    hours = _every_hours(steps[0]) if len(steps) == 1 else None
    if hours is not None and math.isclose(daily, 24 / hours[0]):
        said = f" every {' to '.join(dict.fromkeys(map(fmt_number, hours)))} hours"
    else:
        said = _TIMES_A_DAY.get(daily, "")
    return f"{said} on {', '.join(day.title() for day in days)}" if said and days else said


def _every_hours(dosage: dict[str, Any]) -> tuple[float, float] | None:
    """The fewest and most hours between doses where the timing is given that way: a period in
    hours once each (FHIR Timing), up to its ``periodMax`` ("every 8 to 12 hours": the swap keeps
    it, and "three times a day" said neither the hours nor the range), else a code or words such
    as Q8H."""
    repeat = repeat_of(dosage)
    if as_str(repeat.get("periodUnit")) == "h" and as_num(repeat.get("frequency")) in (None, 1):
        stated = ("frequencyMax", "timeOfDay", "when")
        period = as_num(repeat.get("period"))
        most = as_num(repeat.get("periodMax")) if "periodMax" in repeat else period
        if period is None or period <= 0 or most is None or most < period or any(k in repeat for k in stated):
            return None
        return period, most
    if repeat.get("period") is not None:
        return None
    code = as_obj(as_obj(dosage.get("timing")).get("code"))
    for word in [c.code for c in codes_of(code)] + [as_str(code.get("text")) or ""]:
        if len(word) <= 20 and (found := EVERY_HOURS.fullmatch(" ".join(word.lower().split()))):
            return (float(found[1]),) * 2 if int(found[1]) else None
    return None


def dose_said(order: Order) -> str:
    """The order's dose in mg for a card, "up to" where it is the most of several it allows."""
    if order.dose_mg is None:
        return "unknown"
    return f"{'up to ' if order.dose_up_to else ''}{fmt_number(order.dose_mg)}"


def age_facts(context: PatientContext) -> dict[str, str]:
    """The age a card says, and why it may be two: a birth date of a year or a month alone leaves
    "64 or 65" (``PatientContext.youngest_age``), said with ``age_basis`` where the card has room."""
    oldest, youngest = context.oldest_age, context.youngest_age
    if youngest is None or youngest == oldest:
        return {"age": str(oldest), "age_basis": ""}
    return {"age": f"{youngest} or {oldest}", "age_basis": " (birth date recorded without its day)"}


def date_shown(day: date, parts: int) -> str:
    """A date as much of it as was recorded (``parts``: 1 the year, 2 the month, 3 the day)."""
    return day.isoformat()[: _SHOWN_CHARS.get(parts, 10)]


# The characters of an ISO date that a year, a month and a day take.
_SHOWN_CHARS = {1: 4, 2: 7, 3: 10}


# A day count up to two months is read as it stands; a longer one had to be worked out ("2793
# days ago"), and a clinician weighs it in months or years. The date beside it stays exact.
GLANCE_DAYS = 60
_UNITS = (("year", 365.25, 730), ("month", 365.25 / 12, 0))


def span_said(least: int, most: int, threshold_days: int = 0) -> str:
    """Days for a card: "12 days", "82–112 days", else "about 3 months", "about 8 years", "about
    2–4 months", "up to about 11 months". A card that sets the count beside a threshold of days
    ("the first 90 days count") passes it: exact days up to twice it, so that rounding never
    blurs which side of it the count falls."""
    if most <= max(GLANCE_DAYS, 2 * threshold_days):
        return days_said(most) if least == most else f"{least}–{most} days"
    unit, size = next((name, size) for name, size, start in _UNITS if most >= start)
    low, high = int(least / size + 0.5), int(most / size + 0.5)
    if low == 0:
        return f"up to about {high} {unit}s"
    return f"about {high if low == high else f'{low}–{high}'} {unit}s"
