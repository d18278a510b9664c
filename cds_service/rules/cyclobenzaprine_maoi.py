"""cyclobenzaprine-maoi: contraindicated with MAO inhibitors, and for a washout after one.

When cyclobenzaprine is ordered while an MAO inhibitor (safinamide included) is taken, ordered
alongside, or was last taken fewer than 14 days ago (linezolid and methylene blue, reversible:
fewer than 1 day ago, i.e. last given today), then a critical card offers to remove the order.
When an irreversible MAO inhibitor ordered within the look-back (365 days) was stopped or
completed and its end cannot be told (no duration, no end date), the 14-day assumption would
guess; a warning asks the clinician to confirm the last dose instead (clinical specification §2,
v2 change 6). So it does of one with no date at all, whose look-back cannot be read.
One still listed (active, on hold) whose planned course ended past the washout asks the same in
its own words, however long ago that end: the list says taken, its planned course that it was
not (our reading, where the specification is silent: it had no card). A long-term MAO inhibitor
often stands on the list as an order written years ago (a refill elsewhere): a look-back hid it
(a pharmacist's review).
Evidence: [FDA-IR] contraindicated with MAO inhibitors or within 14 days after their
discontinuation; [FDA-SAF] safinamide with cyclobenzaprine; [FDA-LZD] the 24-hour window.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from pydantic import Field, model_validator

from cds_service.content.markdown import named
from cds_service.content.terminology import Terminology
from cds_service.facts.history import LISTED, Course
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import is_cyclobenzaprine, remove
from cds_service.rules.course_said import (
    days_ago,
    ended_on,
    status_said,
    what_ended,
    when_ordered,
)
from cds_service.rules.maoi_washout import Seen, may_be_current, started_later, within_hours, within_washout

RULE_ID = "cyclobenzaprine-maoi"
IRREVERSIBLE = "maoi"
REVERSIBLE = "maoi-reversible"
# Orders not taken now, or not known to be, whose last dose the record does not give where the
# course end is an assumption: stopped, completed, or paused (on hold since a day it does not
# say: "confirm the last dose", as for a stop; an active one with no end runs to today, §1).
_PAUSED_OR_ENDED = frozenset({"stopped", "completed", "on-hold"})


class Config(RuleConfig):
    # Never snoozed by default, whatever CDS_SNOOZE_DAYS says: its contraindication card is
    # critical (never snoozed in any case), and its warnings ask whether an MAO inhibitor is still
    # taken: "don't show again" would hide that for weeks from a patient who may be taking one (a
    # pharmacist's read); "washout complete" is the override. A site that sets it snoozes the
    # warnings for the inhibitors they named only (``Finding.subject``).
    snooze_days: int | None = Field(default=0, ge=0, le=3650)
    # The label's contraindication: a site may be stricter, never laxer (the card says "within").
    washout_days: int = Field(default=14, ge=14, le=365)
    # Linezolid and methylene blue: the window closes 24 hours after the last dose.
    reversible_washout_days: int = Field(default=1, ge=1, le=365)
    # How far back a stopped MAO inhibitor with no stop date still asks for confirmation, from the
    # day it was ordered. One still listed asks whenever its planned course ended.
    lookback_days: int = Field(default=365, ge=1, le=3650)

    def history_days(self) -> int:
        return self.lookback_days

    @model_validator(mode="after")
    def _reversible_no_longer(self) -> Config:
        """The reversible inhibitors' window is the shorter: the card says so, and the override reason."""
        if self.reversible_washout_days > self.washout_days:
            raise ValueError("reversible_washout_days is more than washout_days")
        return self


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    today = context.today
    contraindicated = [
        Seen(d.drug.ingredient, f"{d.drug.name} (ordered now)")
        for d in context.drafts
        if d.reference != order.reference
        and d.drug is not None
        and (terminology.is_medication(IRREVERSIBLE, d.drug) or terminology.is_medication(REVERSIBLE, d.drug))
    ]
    unknown_stop: list[Course] = []  # stopped with no duration or stop date
    course_over: list[Course] = []  # still listed, its planned course over
    lookback = today - timedelta(days=config.lookback_days)
    for course in context.courses:
        kind = _kind(course.concepts)
        if kind is None or (course.start > today and course.status not in LISTED):
            continue
        # Read from its first day, a course whose day was not recorded ends as early as it can:
        # what is within the washout so read is certainly; ``later`` is what may be.
        later = started_later(course, today)
        if kind == IRREVERSIBLE and course.assumed_end and course.status in _PAUSED_OR_ENDED:
            if (today - course.start).days < config.washout_days:
                # Ordered inside the washout: whenever it stopped, any dose taken was recent.
                contraindicated.append(Seen(course.drug.ingredient, _unknown_stop(course, config)))
            elif later.start >= lookback:
                unknown_stop.append(course)
            continue
        washout = config.washout_days if kind == IRREVERSIBLE else config.reversible_washout_days
        seen = within_washout(course, today, washout) or within_hours(course, context.now, washout)
        if seen is not None:
            contraindicated.append(seen)
        elif later is not course and within_washout(later, today, washout) is not None:
            # Written late enough in its year or month, it ran into the washout: still listed, it
            # may be taken now (linezolid too); stopped, its last dose is to be asked.
            if course.status in LISTED:
                contraindicated.append(Seen(course.drug.ingredient, may_be_current(later, today)))
            elif kind == IRREVERSIBLE:
                unknown_stop.append(course)
        elif kind == IRREVERSIBLE and course.status in LISTED:
            # Still listed though its planned course ended, as late as the record
            # allows: it may be taken still (a refill elsewhere) or stopped without a word.
            course_over.append(later)
    if contraindicated:
        # The reversible inhibitors' window closes a day after the last dose [FDA-LZD]: by the concept.
        return _finding(order, "maoi", contraindicated, config, reversible=terminology.medication_concepts[REVERSIBLE])
    # Stopped with no date at all: any dose may be recent, however unlikely (a clinical review's
    # call: the harm is severe, and the look-back cannot be read without a date).
    unknown_stop += [c for c in context.undated_orders if _kind(c.concepts) == IRREVERSIBLE and not c.end_recorded]
    return _last_dose_unknown(order, unknown_stop, course_over, config, today)


def _last_dose_unknown(
    order: Order, unknown_stop: list[Course], course_over: list[Course], config: Config, today: date
) -> Finding | None:
    """The warning asking for the last dose: named for a stopped order with no stop date if there
    is one (the specification's), else for the list's order whose planned course ended."""
    on_record = [Seen(c.drug.ingredient, f"{c.drug.name} ({_on_record(c, today)})") for c in unknown_stop + course_over]
    if unknown_stop:
        latest = max(unknown_stop, key=lambda c: (c.start_known, c.start))  # a date known says more
        extra = {"ingredient": latest.drug.ingredient, "ordered": when_ordered(latest)}
        finding = _finding(order, "stop-date-unknown", on_record, config, extra)
        return replace(finding, names_undated=frozenset(c.reference for c in unknown_stop))
    if course_over:
        latest = max(course_over, key=lambda c: c.last_day)
        ended = {"ended": what_ended(latest), "ended_on": ended_on(latest), "listed": status_said(latest)}
        return _finding(order, "supply-ended", on_record, config, {"ingredient": latest.drug.ingredient, **ended})
    return None


def _kind(concepts: frozenset[str]) -> str | None:
    """Which washout applies: the irreversible one (14 days), the reversible one (24 hours)."""
    if IRREVERSIBLE in concepts:
        return IRREVERSIBLE
    if REVERSIBLE in concepts:
        return REVERSIBLE
    return None


def _on_record(course: Course, today: date) -> str:
    """What the record says of a course whose last dose is unknown, each in its own words (a card
    may list a stopped one and a listed one together)."""
    ordered, status = when_ordered(course), status_said(course)
    if not course.start_known and not course.end_recorded:
        return f"{status}, no start or stop date recorded"
    if course.assumed_end:
        return f"{ordered}, {status}; no duration or stop date recorded"
    if course.status in LISTED:
        exact = course.start_parts == 3 or course.end_recorded
        ended = days_ago(course.last_day, today) if exact else ended_on(course)
        return f"{ordered}, still listed {status}; {what_ended(course)} {ended}"
    # Stopped, its day not recorded: from its first day's reading to the latest it allows.
    later = started_later(course, today)
    until = "today" if later.last_day >= today else later.last_day.isoformat()
    days = (course.end - course.start).days
    return f"{ordered}, {status}; {days}-day course: last dose between {course.last_day.isoformat()} and {until}"


def _unknown_stop(course: Course, config: Config) -> str:
    return (
        f"{course.drug.name} ({when_ordered(course)}, {status_said(course)}, stop date unknown: "
        f"any dose fell within the last {config.washout_days} days)"
    )


def _finding(
    order: Order,
    variant: str,
    seen: list[Seen],
    config: Config,
    extra: dict[str, str] | None = None,
    reversible: frozenset[str] = frozenset(),
) -> Finding:
    ingredients = list(dict.fromkeys(s.ingredient for s in seen))
    evidence = ["FDA-IR"]
    if "safinamide" in ingredients:
        evidence.append("FDA-SAF")
    if variant == "maoi" and reversible & set(ingredients):
        evidence.append("FDA-LZD")
    facts = {
        "maoi": named(dict.fromkeys(s.label for s in seen), "; "),  # each once: a list may repeat an order
        "ingredients": named(ingredients, ", "),
        "washout_days": str(config.washout_days),
        "reversible_washout": _days(config.reversible_washout_days),
        **(extra or {}),
    }
    if variant == "maoi":
        facts["washout"] = _washout(ingredients, reversible, config)
    proposals = remove(order) if variant == "maoi" else ()
    subject = frozenset(ingredients)
    return Finding(RULE_ID, variant, order, facts, proposals, evidence=tuple(evidence), subject=subject)


def _days(days: int) -> str:
    return "24 hours" if days == 1 else f"{days} days"


def _washout(ingredients: list[str], reversible_ones: frozenset[str], config: Config) -> str:
    """The washout of the inhibitors named, not of every one: a phenelzine card spoke of
    linezolid's 24 hours, inviting a wrong 24-hour washout (a pharmacist's review)."""
    reversible = [name for name in ingredients if name in reversible_ones]
    irreversible = [name for name in ingredients if name not in reversible_ones]
    hours = _days(config.reversible_washout_days)
    if not reversible:
        return f"with MAO inhibitors and within {config.washout_days} days of stopping one"
    kind = "a reversible MAO inhibitor" if len(reversible) == 1 else "reversible MAO inhibitors"
    if not irreversible:
        return f"with {named(reversible, ' and ')} ({kind}) and within {hours} of the last dose"
    return (
        f"with MAO inhibitors: within {config.washout_days} days of stopping {named(irreversible, ' or ')}, "
        f"and within {hours} of the last dose of {named(reversible, ' or ')} ({kind})"
    )


_EVERY_VARIANT = ("ingredients", "maoi", "reversible_washout", "washout_days")
RULE = Rule(
    id=RULE_ID,
    variants={
        "maoi": ("washout", *_EVERY_VARIANT),
        "stop-date-unknown": ("ingredient", "ordered", *_EVERY_VARIANT),
        "supply-ended": ("ended", "ended_on", "ingredient", "listed", *_EVERY_VARIANT),
    },
    applies_to=is_cyclobenzaprine,
    evaluate=evaluate,
    config=Config,
)
