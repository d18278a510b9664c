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

from dataclasses import dataclass, replace
from datetime import date, timedelta

from pydantic import Field, model_validator

from cds_service.content.markdown import named
from cds_service.content.terminology import Terminology
from cds_service.facts.history import LISTED, Course
from cds_service.facts.model import Order, PatientContext
from cds_service.rules import Finding, Rule, RuleConfig
from cds_service.rules.common import date_shown, is_cyclobenzaprine, remove
from cds_service.rules.course_said import (
    course_end,
    days_ago,
    ended_on,
    finished,
    status_said,
    what_ended,
    when_ordered,
)
from cds_service.rules.interactions import listed_undated

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


@dataclass(frozen=True)
class _Seen:
    ingredient: str
    label: str


def evaluate(context: PatientContext, order: Order, terminology: Terminology, config: Config) -> Finding | None:
    if not is_cyclobenzaprine(order, terminology):
        return None
    today = context.today
    contraindicated = [
        _Seen(d.drug.ingredient, f"{d.drug.name} (ordered now)")
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
        later = _started_later(course, today)
        if kind == IRREVERSIBLE and course.assumed_end and course.status in _PAUSED_OR_ENDED:
            if (today - course.start).days < config.washout_days:
                # Ordered inside the washout: whenever it stopped, any dose taken was recent.
                contraindicated.append(_Seen(course.drug.ingredient, _unknown_stop(course, config)))
            elif later.start >= lookback:
                unknown_stop.append(course)
            continue
        washout = config.washout_days if kind == IRREVERSIBLE else config.reversible_washout_days
        seen = _within_washout(course, today, washout)
        if seen is not None:
            contraindicated.append(seen)
        elif later is not course and _within_washout(later, today, washout) is not None:
            # Written late enough in its year or month, it ran into the washout: still listed, it
            # may be taken now (linezolid too); stopped, its last dose is to be asked.
            if course.status in LISTED:
                contraindicated.append(_Seen(course.drug.ingredient, _may_be_current(later, today)))
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
    on_record = [
        _Seen(c.drug.ingredient, f"{c.drug.name} ({_on_record(c, today)})") for c in unknown_stop + course_over
    ]
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


def _started_later(course: Course, today: date) -> Course:
    """The course as if written on the last day its recorded year or month allows (not after
    today); the course itself when its day was recorded."""
    return course if course.start_parts == 3 else course.started_on(min(course.start_latest, today))


def _may_be_current(later: Course, today: date) -> str:
    """A listed course whose day was not recorded, written as late as its record allows."""
    runs = (
        f"may run to {later.last_day.isoformat()}"
        if later.last_day >= today
        else f"may have run to {days_ago(later.last_day, today)}"
    )
    return f"{later.drug.name} (listed {status_said(later)}, {when_ordered(later)}: its supply {runs})"


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
    later = _started_later(course, today)
    until = "today" if later.last_day >= today else later.last_day.isoformat()
    days = (course.end - course.start).days
    return f"{ordered}, {status}; {days}-day course: last dose between {course.last_day.isoformat()} and {until}"


def _unknown_stop(course: Course, config: Config) -> str:
    return (
        f"{course.drug.name} ({when_ordered(course)}, {status_said(course)}, stop date unknown: "
        f"any dose fell within the last {config.washout_days} days)"
    )


def _within_washout(course: Course, today: date, washout_days: int) -> _Seen | None:
    """The course, described, when it runs today, starts later, or ended inside the washout."""
    name, ingredient = course.drug.name, course.drug.ingredient
    if not course.start_known and course.end > today:  # no start date, running today by the record
        if course.status in LISTED:
            return _Seen(ingredient, f"{name} ({listed_undated(course.status)})")
        return _Seen(ingredient, f"{name} ({finished(course, course.last_day, today)})")
    if course.start > today:
        return _Seen(ingredient, f"{name} (ordered to start {date_shown(course.start, course.start_parts)})")
    # Counted from the latest of the end's own date, its UTC day and the site's day: a dose at 23:30
    # in New York on the 7th was taken on the 8th in UTC, one at 23:00 UTC the next day in Tokyo.
    last_day = max(course.last_day, course.last_day_latest or course.last_day)
    ago = (today - last_day).days
    if ago <= 0 and course.start == today == last_day:
        return _Seen(ingredient, f"{name} (given today)")
    if ago <= 0 and course.status in LISTED:  # a renewal's dosing may have begun long before
        return _Seen(ingredient, f"{name} (listed {status_said(course)}, {when_ordered(course)})")
    if ago <= 0:  # stopped or completed, its course not over by the record: when it stopped is not said
        return _Seen(ingredient, f"{name} ({finished(course, last_day, today)})")
    if ago < washout_days and course.start_known and course.start_parts < 3:  # read from its first day: later
        days = (course.end - course.start).days
        earliest = f"{days}-day course, so the last dose no earlier than {days_ago(last_day, today)}"
        return _Seen(ingredient, f"{name} ({when_ordered(course)}; {earliest})")
    if ago < washout_days and course.status in LISTED:  # the record says taken: the supply, not
        return _Seen(
            ingredient, f"{name} (listed {status_said(course)}, {what_ended(course)} {days_ago(last_day, today)})"
        )
    if ago < washout_days:
        return _Seen(ingredient, f"{name} ({course.status}, {course_end(course, last_day, today)})")
    return None


def _finding(
    order: Order,
    variant: str,
    seen: list[_Seen],
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
