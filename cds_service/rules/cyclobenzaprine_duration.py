"""cyclobenzaprine-duration: limit oral cyclobenzaprine to 2–3 weeks.

When an oral cyclobenzaprine order plans more than 21 days, or the days already taken in the
last 30 days plus the days planned exceed 21, then warn and offer to shorten it to what remains
of the 21 days (or, when nothing remains, to remove it); when it states no duration at all,
then ask for one. The sublingual product (Tonmya, fibromyalgia) is exempt: it is labelled for
long-term use with its own dose limits. Evidence: [FDA-IR] and [FDA-ER] "use only for short
periods (up to 2–3 weeks)"; [FAIL] tolerance with prolonged use.

The update is also this card's ``limit``: the pipeline composes it into the dose changes other
cards offer for the same order (the 5 mg swap), so accepting a swap alone leaves a safe order.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

from pydantic import Field

from cds_service.content.markdown import named
from cds_service.content.terminology import Drug, Terminology
from cds_service.facts.dose import dosages_of, dose_of_step, per_day_of_step
from cds_service.facts.history import LISTED, Course
from cds_service.facts.model import Order, PatientContext
from cds_service.facts.numbers import CENTURY_DAYS, days_said, fmt_number
from cds_service.fhir.versions import to_r4
from cds_service.rules import NO_CHANGE, Finding, Limit, NoChange, Proposal, Rule, RuleConfig
from cds_service.rules.actions import delete, update
from cds_service.rules.common import date_shown, dose_said, is_cyclobenzaprine
from cds_service.rules.course_said import status_said, what_ended
from cds_service.rules.duration_update import with_duration
from cds_service.rules.interactions import listed_undated

RULE_ID = "cyclobenzaprine-duration"
# The labels' "up to 2–3 weeks" as the specification counts it (§2).
LABEL_DAYS = 21
_PLAUSIBLE = 1e6


class Config(RuleConfig):
    max_days: int = Field(default=LABEL_DAYS, ge=1, le=365)
    cumulative_window_days: int = Field(default=30, ge=1, le=365)

    def history_days(self) -> int:
        return self.cumulative_window_days


def is_oral_cyclobenzaprine(order: Order, terminology: Terminology) -> bool:
    return is_cyclobenzaprine(order, terminology) and not (order.drug is not None and order.drug.sublingual)


def _days_taken(courses: list[Course], since: date, today: date) -> int:
    """Days from ``since`` to ``today`` (both included) on which any of ``courses`` ran; overlaps
    count once. Spans, not days: counted a day at a time for each of 200 drafts, a history of
    4,790 courses took 43 s."""
    taken, counted_to = 0, None
    for first, last in sorted((max(c.start, since), min(c.taken_to, today)) for c in courses):
        if counted_to is not None:
            first = max(first, counted_to + timedelta(days=1))
        if first <= last:
            taken += (last - first).days + 1
            counted_to = last
    return taken


def _limit(order: Order, days: int, terminology: Terminology, today: date) -> Limit:
    """The duration limit as a change to any update of this order (composed into dose changes).
    Every instruction is read as the facts read it (clinical specification §1, from its R4 form:
    timing codes, doses in mg, dose ranges): the draft's own by its facts, another card's change
    of it (the 5 mg swap) from its JSON, counted in its ``product``'s tablets. An instruction
    alone in its order takes the draft's own figures where it does not say; one of several does
    not: the draft's are its highest."""

    def apply(resource: dict[str, Any], product: Drug | None) -> dict[str, Any]:
        steps = dosages_of(resource)
        own = resource is order.resource and len(order.step_per_day) == len(steps)
        r4_steps = dosages_of(order.r4 if own else to_r4(resource) or resource)
        alone = len(steps) <= 1

        def sig(index: int, dosage: dict[str, Any]) -> tuple[float | None, float | None]:
            units = per_day = None
            if len(r4_steps) == len(steps) and index < len(steps):  # a draft with no instruction has none to read
                units = dose_of_step(r4_steps[index], order.drug if own else None)[1]
                per_day = order.step_per_day[index] if own else per_day_of_step(r4_steps[index], terminology)
            if alone:
                units = units if _plausible(units) else order.units_per_dose
                per_day = per_day if _plausible(per_day) else order.per_day
            return _plausible(units), _plausible(per_day)

        drug = product or order.drug
        changed = None if resource is order.resource else dataclasses.replace(order, resource=resource, drug=drug)
        return with_duration(order, days, sig, today, changed=changed)

    return apply


def _plausible(number: float | None) -> float | None:
    return number if number is not None and 0 < number < _PLAUSIBLE else None


def _course_start(course: Course) -> str:
    """When a course began, and that its length is assumed where the record does not say it (§1)."""
    assumed = f", length not recorded: {(course.end - course.start).days} days assumed" if course.assumed_end else ""
    return date_shown(course.start, course.start_parts) + assumed


def _prior_courses(context: PatientContext, since: date) -> tuple[list[Course], list[Course]]:
    """Oral cyclobenzaprine courses that ran in the window, on days the record gives (the
    sublingual product is not counted), and those that ran there whose start is not recorded
    (still listed, or their end alone recorded: their days unknown, counted as none)."""
    ran = [
        c
        for c in context.courses
        if c.end > since  # its last day on or after it: most of a history ended before
        and c.start <= context.today
        and "cyclobenzaprine" in c.concepts
        and not c.drug.sublingual
        and c.taken_to >= since  # over the morning the window begins: no day of it taken
    ]
    return [c for c in ran if c.start_known], [c for c in ran if not c.start_known]


def _uncounted(undated: list[Course]) -> str:
    """The card's sentence naming the window's orders with no start date, each as the list shows
    it (the duplicate card's words for one still listed; a finished one by the end it records, by
    which a clinician finds it), so the partial-history notice leaves them to the card. Two of
    one product are two orders: named once, one course went unasked (a pharmacist's review)."""
    if not undated:
        return ""
    said = list(dict.fromkeys(map(_undated_said, sorted(undated, key=lambda c: c.end))))
    its, it = ("its", "it") if len(said) == 1 else ("their", "each")
    return (
        f" Also on record: {named(said, '; ')}. {its.capitalize()} days may add to this course: "
        f"ask when and for how long {it} was taken."
    )


def _undated_said(course: Course) -> str:
    if course.status in LISTED:  # read as taken today, whenever it began
        return f"**{course.drug.name}** ({listed_undated(course.status)})"
    ended = f"{what_ended(course)} {course.last_day.isoformat()}"
    return f"**{course.drug.name}** ({status_said(course)}, {ended}, start date not recorded)"


def _offered(order: Order, remaining: int, limit_change: Limit | None) -> tuple[tuple[Proposal, ...], dict[str, str]]:
    """The card's suggestion, and the facts it adds: remove the draft when nothing of the limit
    remains, else the update limiting it where one can be written. Where it cannot (``NoChange``),
    none, and the card says why; a swap the limit is composed into is not offered either
    (``pipeline.cards``): accepted alone, it would keep the whole course."""
    if remaining <= 0:
        return (Proposal(actions=(delete(order),), label="remove", recommended=True),), {}
    if limit_change is None:
        return (), {}
    try:
        return (Proposal(actions=(update(limit_change(order.resource, None)),), recommended=True),), {}
    except NoChange as cannot:
        return (), {NO_CHANGE: cannot.reason}


def _variant(order: Order, prior_days: int, limit: int) -> str | None:
    """The card for the days planned, taken and planned, or unknown; None: within the limit. Days
    unknown where the dates already plan some (a dated taper with an open last step,
    ``Order.planned_at_least``) are over the limit when those are: warned, not asked for a
    duration, as the course is longer still; within it, how long is asked."""
    planned = order.planned_days
    reading = planned if planned is not None else order.planned_at_least
    if reading is None:
        return "duration-unknown"
    if prior_days and prior_days + reading > limit:
        return "cumulative-too-long"
    if reading > limit:
        return "planned-too-long"
    return "duration-unknown" if planned is None else None


def _planned_said(order: Order, in_days: bool = False) -> str:
    """The days planned as the card says them: "at least" those the dates plan where the open
    last step's days are unknown (``_variant``): a number of days said plainly would be a course
    shorter than the order's. Past a century, "over 100 years": a count of them is no number a
    clinician weighs (``facts.numbers.days_said``). ``in_days``: "30 days", not "30"."""
    days = order.planned_days if order.planned_days is not None else order.planned_at_least
    if days is None:
        return "unknown"
    if days > CENTURY_DAYS:
        return days_said(days)
    said = days_said(days) if in_days else fmt_number(days)
    return said if order.planned_days is not None else f"at least {said}"


def evaluate(context: PatientContext, order: Order, terminology: Terminology, limits: Config) -> Finding | None:
    if not is_oral_cyclobenzaprine(order, terminology):
        return None
    limit = limits.max_days
    since = context.today - timedelta(days=limits.cumulative_window_days - 1)
    prior, undated = _prior_courses(context, since)
    prior_days = _days_taken(prior, since, context.today)
    planned = order.planned_days
    variant = _variant(order, prior_days, limit)
    if variant is None:
        return None

    remaining = limit - prior_days
    limit_change = _limit(order, remaining, terminology, context.today) if remaining > 0 else None
    # The card's own update where the draft's length or units a day are known (§2). The limit is
    # composed into a swap whenever the card fires: the swap counts its own tablets, where a
    # liquid's 300 mL, no units a day, had left the 5 mg swap with no limit at all.
    readable = planned is not None or order.units_per_day is not None
    proposals, unwritten = _offered(order, remaining, limit_change if readable else None)
    facts = {
        "limit_days": str(limit),
        # The label's words for the shipped limit; a site's own, in days: "limit to 2–3 weeks"
        # over a 21-day order, where a site had set 14, read as no limit at all.
        "limit_said": "2–3 weeks" if limit == LABEL_DAYS else f"{days_said(limit)} (this site's limit)",
        "window_days": str(limits.cumulative_window_days),
        "suggested_days": str(max(remaining, 0)),
        "suggested_length": days_said(max(remaining, 0)),
        "planned_days": _planned_said(order),
        "planned_length": _planned_said(order, in_days=True),
        "duration_basis": order.duration_basis or "",
        "prior_days": str(prior_days),
        "prior_courses": ("course from " if len(prior) == 1 else "courses from ")
        + "; ".join(map(_course_start, sorted(prior, key=lambda c: c.start))),
        "prior_note": f" It was already taken on {prior_days} of the last {limits.cumulative_window_days} days."
        if prior_days
        else "",
        "uncounted": _uncounted(undated),
        "kept": f"keeps {dose_said(order)} mg" if order.dose_mg is not None else "keeps the ordered dose",
        **unwritten,
    }
    note = f"limited to {days_said(remaining)}" if limit_change else ""
    # The label of the product ordered: the extended-release capsules have their own.
    label = "FDA-ER" if order.drug is not None and order.drug.extended_release else "FDA-IR"
    return Finding(
        RULE_ID,
        variant,
        order,
        facts,
        proposals,
        limit=limit_change,
        limit_note=note,
        evidence=(label, "FAIL"),
        names_undated=frozenset(c.reference for c in undated),
    )


FACTS = (
    "duration_basis",
    "kept",
    "limit_days",
    "limit_said",
    "planned_days",
    "planned_length",
    "prior_courses",
    "prior_days",
    "prior_note",
    "suggested_days",
    "suggested_length",
    "uncounted",
    "window_days",
)

RULE = Rule(
    id=RULE_ID,
    variants=dict.fromkeys(("planned-too-long", "cumulative-too-long", "duration-unknown"), FACTS),
    applies_to=is_oral_cyclobenzaprine,
    evaluate=evaluate,
    config=Config,
)
