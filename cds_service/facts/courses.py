"""A history's medication orders as courses: a drug some rule reads, a first and a last day.

Most of a history is dropped at its drug, which is read once per process for every patient
whose orders name it the same way (``JsonMemo``: a formulary's products, over and over).
"""

from __future__ import annotations

import logging
import math
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Literal, NamedTuple

import orjson

from cds_service.content.terminology import Drug, Terminology
from cds_service.facts.as_needed import as_needed_supply
from cds_service.facts.bounds import bounds_end_instant, starts_when_written
from cds_service.facts.dose import dosages_of
from cds_service.facts.history import LISTED, START_UNRECORDED, Course
from cds_service.facts.medications import MedicationIndex, drug_named, names_nothing
from cds_service.facts.model import MEDICATION_REQUESTS
from cds_service.facts.sig import CoursePlan, PlanInputs, course_plan, plan_inputs, planned_request
from cds_service.facts.together import bounds_period
from cds_service.fhir.json import as_obj, date_parts, reference_of, to_date, to_end_date
from cds_service.fhir.memo import JsonMemo, JsonTable, JsonTables
from cds_service.fhir.versions import to_r4

log = logging.getLogger(__name__)

_HISTORY_STATUSES = {"active", "on-hold", "completed", "stopped"}
# The other statuses of R4's required value set (DSTU2's are among R4's): no course, rightly.
_NEVER_TAKEN = {"cancelled", "entered-in-error", "draft"}
_UNKNOWN_COURSE_DAYS = 14


def _validity_start(raw: dict[str, Any]) -> date | None:
    return to_date(as_obj(as_obj(raw.get("dispenseRequest")).get("validityPeriod")).get("start"))


_ONE_DAY = timedelta(days=1)


_CourseDays = tuple[date, date, bool, int, bool, date | None]


def _course_days(
    raw: dict[str, Any],
    plan: CoursePlan,
    status: str,
    today: date,
) -> _CourseDays | None:
    """A history order's first day, the day after its last, whether the end is assumed
    (clinical specification §1), how much of the start's date was recorded, whether the end
    is the record's own, and its last day of use where that is earlier (``Course.taken_to_day``):
    from ``authoredOn`` (else the bounds' or the validity period's start) for the planned duration;
    a bounds period's end is the last day; an unknown duration is 14 days, assumed, except that an
    active order runs until today. None: a finished order with no date at all."""
    planned, span, dosing_start, used = plan
    written = raw.get("authoredOn")
    written_day = to_date(written)
    start = written_day or dosing_start or _validity_start(raw)
    if start is None:
        return _unstarted(raw, status, today)
    assumed = recorded = False
    if span is not None and planned is not None:
        # The bounds period set the duration: it is the course, whenever the order was written
        # (before dosing began, or after: a medication history entered later).
        start, end, recorded = span[0], span[1] + _ONE_DAY, True
    elif planned is not None:
        # An order written on the 1st for dosing from the 5th ran from the 5th: its 14 days end on
        # the 18th (a washout counts from then). A dosing start before the written date (a
        # renewal, a history entered late) does not move the course back: the later reading wins.
        start = max(start, dosing_start or start)
        # Start + D days covers the start and the D - 1 days after; part of a day counts as a day.
        end = start + timedelta(days=max(math.ceil(planned), 1))
    elif status == "active":
        end = max(start, today) + _ONE_DAY
    else:
        end, assumed = start + timedelta(days=_UNKNOWN_COURSE_DAYS), True
    return start, end, assumed, _start_parts(raw, start, written, written_day), recorded, used if recorded else None


def _unstarted(raw: dict[str, Any], status: str, today: date) -> _CourseDays | None:
    """An order with no date it began, placed by what the record does give (``Course.start_known``:
    no figure counted from a start reads it): a bounds period's end is its last day, a stop date
    on record; else, still on the medication list, it is taken today; else (finished) it cannot
    be placed. Its start is read as its last day, or today if that is sooner."""
    periods = (bounds_period(dosage) for dosage in dosages_of(raw))
    last = max(filter(None, (to_end_date(period.get("end")) for period in periods)), default=None)
    if last is not None:
        return min(last, today), last + _ONE_DAY, False, START_UNRECORDED, True, None
    return (today, today + _ONE_DAY, False, START_UNRECORDED, False, None) if status in LISTED else None


class _Plan(NamedTuple):
    """What an order's dosing and dispensing say of its course, whoever's order it is."""

    plan: CoursePlan
    last_end: datetime | None  # an end the bounds period dates as a time with a zone, in UTC
    written_date_read: bool  # a bounds period that ends without a start: the plan is the order's own
    as_needed_supply: bool  # its days the soonest an as-needed supply runs out (``Course.as_needed_supply``)


class _DrugRead(NamedTuple):
    """A drug a rule reads, its concepts, and its fields as JSON text: the plans of orders for it
    are kept by that and their ``plan_inputs`` (a drug is dosed and dispensed a few ways, over and
    over). Written once, with the concept that names it, not once an order."""

    drug: Drug
    concepts: frozenset[str]
    key: bytes

    def plan(
        self, raw: dict[str, Any], terminology: Terminology, plans: JsonTable[_Plan]
    ) -> tuple[CoursePlan, datetime | None, bool]:
        """An order's plan, its bounds' end as an instant and whether its days are an as-needed
        supply's soonest (``_Plan``), read as for every order of this drug dosed alike, unless a
        bounds period ends without a start (the order's own: its bounds end it)."""
        inputs = plan_inputs(raw)
        try:
            key = self.key + orjson.dumps(inputs)
        except TypeError:  # what orjson cannot write (nested past its limit): read each time
            found = _read_plan(inputs, self.drug, terminology)
        else:
            found = plans.known.get(key) or plans.keep(key, _read_plan(inputs, self.drug, terminology))
        if found.written_date_read:
            plan = course_plan(raw, self.drug, terminology)
            dated = plan[1] is not None
            return plan, bounds_end_instant(raw) if dated else None, found.as_needed_supply and not dated
        return found.plan, found.last_end, found.as_needed_supply


def _read_plan(inputs: PlanInputs, drug: Drug, terminology: Terminology) -> _Plan:
    request = planned_request(inputs)
    plan = course_plan(request, drug, terminology)
    last_end = bounds_end_instant(request) if plan[1] is not None else None
    supply = plan[0] is not None and as_needed_supply(request)
    return _Plan(plan, last_end, starts_when_written(request), supply)


def _read_drug(terminology: Terminology, concept: dict[str, Any]) -> _DrugRead | Literal[False] | None:
    """The drug a medication concept names (an order's own, or its Medication's), if a rule reads
    it; False when the concept names nothing at all (kept per process like the rest: asked of
    every order naming its drug by reference, ~300 a call of Epic's histories)."""
    drug = drug_named(concept, terminology)
    if drug is None:
        return False if names_nothing(concept) else None
    if drug.ingredient not in terminology.relevant_ingredients:
        return None
    return _DrugRead(drug, terminology.concepts_of_drug(drug), orjson.dumps(drug))


_DRUGS = JsonMemo(_read_drug)
_PLANS = JsonTables[Terminology, _Plan]()


def read_courses(
    raws: list[dict[str, Any]],
    draft_ingredients: dict[str, str | None],
    terminology: Terminology,
    medications: MedicationIndex,
    today: date,
    zone: tzinfo,
    history_days: int,
) -> tuple[list[Course], list[Course], int, list[str]]:
    """The courses; the finished orders of a drug a rule reads with no date it began (read, not
    placed in time: the notice names those no card asks about): one whose end is recorded is a
    course too, one with none no course (a course of today marked ``START_UNRECORDED``); and how
    many orders name no drug, by a reference that leads to none (the history read in part); the
    drugs of orders whose status could not be read (``_status_unread``). ``zone``: the site's,
    where ``today`` is; ``history_days``: how far back a check reads a finished course."""
    drug_of, plans = _DRUGS.reader(terminology), _PLANS.table(terminology)
    courses, undated, unnamed, unsure = list[Course](), list[Course](), 0, list[str]()
    for raw in raws:
        # The drug is named the same way in every FHIR version: most of a history is dropped here,
        # before its type is asked (a MedicationStatement naming the drug is no order).
        concept = raw.get("medicationCodeableConcept")
        if type(concept) is not dict:
            # named by medicationReference (Epic's way), or one concept sent as an array: the concept
            # found is read, and kept, as one inline is (for an order only: no other is a course)
            concept = medications.concept(raw) if raw.get("resourceType") in MEDICATION_REQUESTS else None
            if concept is None:
                continue
        read = drug_of(concept)
        if not read:
            if read is False and _unnamed(raw, medications, draft_ingredients, today, history_days):  # rare
                unnamed += 1
            continue
        if raw.get("resourceType") not in MEDICATION_REQUESTS:
            continue
        drug, concepts, _ = read
        raw = to_r4(raw) or raw
        status: Any = raw.get("status")
        bare = type(status) is str and status in _HISTORY_STATUSES  # most orders: no call
        reference = reference_of(raw)
        if draft_ingredients.get(reference, "") == drug.ingredient:
            continue  # the draft's own copy
        if not bare and not (status := _history_status(status)):
            unsure += [drug.name] if _status_unread(raw, today, history_days) else []
            continue
        try:
            plan, last_end, prn = read.plan(raw, terminology, plans)  # prn: ``Course.as_needed_supply``
            days = _course_days(raw, plan, status, today)
        except OverflowError:  # a course that ends after the year 9999 is nonsense, not a course
            continue
        if days is None:  # finished, no date at all: no course
            undated.append(Course(reference, drug, concepts, today, today, status, True, None, START_UNRECORDED))
            continue
        start, end, assumed, parts = days[:4]
        latest = _latest_day(last_end, zone, end) if last_end else None
        # Positional: half the cost of naming the fields (a history makes dozens).
        courses.append(Course(reference, drug, concepts, start, end, status, assumed, latest, *days[3:], last_end, prn))
        if parts == START_UNRECORDED and status not in LISTED:
            undated.append(courses[-1])  # finished, placed by its end alone: named too
    _said(unnamed, len(undated), len(unsure))
    return courses, undated, unnamed, unsure


def _said(unnamed: int, undated: int, unsure: int) -> None:
    """How many orders were read in part, for the operator: counts, no patient's data."""
    if unnamed or undated or unsure:
        log.warning(
            "medications: %d order(s) with no drug, %d with no start date, %d with a status unread",
            unnamed,
            undated,
            unsure,
        )


def _history_status(status: Any) -> str:
    """An order's status if a course has it ("Active": a capital drops no course), else ""."""
    status = status.lower() if isinstance(status, str) else ""
    return status if status in _HISTORY_STATUSES else ""


def _status_unread(raw: dict[str, Any], today: date, history_days: int) -> bool:
    """An order whose status is none R4 knows ("bogus", "unknown", none at all), written when a
    check could read it (``_unnamed``'s window): no course, for it may have been cancelled or
    entered in error, but named in the notice (left out with no word, a duplicate relaxant went
    unseen). Cancelled, entered in error and draft are read: never taken. A legacy order written
    before any check reads a finished course is no news: its "unknown" would be said on every call."""
    status = raw.get("status")
    if isinstance(status, str) and status.lower() in _NEVER_TAKEN:
        return False
    start = to_date(raw.get("authoredOn")) or _validity_start(raw)
    return start is None or start >= today - timedelta(days=history_days)


def _latest_day(instant: datetime, zone: tzinfo, end: date) -> date | None:
    """The later of the days an end's instant falls on in UTC and where the site is, when after
    the course's last day (``end`` the day after): 23:30 in New York is the next day in UTC,
    23:00 in UTC the next day in Tokyo (``Course.last_day_latest``)."""
    latest = max(instant.date(), instant.astimezone(zone).date())
    return latest if latest >= end else None


def _start_parts(raw: dict[str, Any], start: date, written: Any, written_day: date | None) -> int:
    """How much of the start's date was recorded: a partial date (``authoredOn``, a dosing or a
    validity period's start) is read as its first day, unless a full date names that day too."""
    if start == written_day and len(written) >= 10:
        return 3  # most orders: the written date, in full, set the start (its day read already)
    validity = as_obj(as_obj(raw.get("dispenseRequest")).get("validityPeriod")).get("start")
    dosing = (bounds_period(dosage).get("start") for dosage in dosages_of(raw))
    said = [text for text in (written, validity, *dosing) if type(text) is str and to_date(text) == start]
    if not said or any(len(text) >= 10 for text in said):
        return 3
    return min(map(date_parts, said))


def _unnamed(
    raw: dict[str, Any],
    medications: MedicationIndex,
    draft_ingredients: dict[str, str | None],
    today: date,
    history_days: int,
) -> bool:
    """An order a check could read (not entered in error, not written more than ``history_days``
    ago and finished) whose drug nothing names; not under the id of a draft whose drug is not
    known either (its own copy: the draft is said not checked)."""
    status = raw.get("status")
    if not isinstance(status, str) or status.lower() not in _HISTORY_STATUSES or not medications.leads_nowhere(raw):
        return False
    r4 = to_r4(raw) or raw  # the drafts are named as R4 names them (a DSTU2 MedicationOrder/7 is MedicationRequest/7)
    start = to_date(r4.get("authoredOn")) or _validity_start(r4)
    current = status.lower() in ("active", "on-hold") or start is None or start >= today - timedelta(days=history_days)
    return current and draft_ingredients.get(reference_of(r4), "") is not None
