"""The plain facts rules read: orders, conditions, medication courses, procedures, the patient.

No FHIR here: an order has a dose in mg, administrations per day and a planned duration in
days; a condition is active with an onset; a course has a first and a last day
(clinical specification §1). ``cds_service.facts`` builds them from the hook request's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any, NamedTuple

from cds_service.content.terminology import Drug
from cds_service.fhir.coding import Code
from cds_service.fhir.json import last_day_covered

# The notices' names for a birth date and a condition's onset sent that are no date, and for an
# age unknown with nothing sent to read: no Patient record, one with no birthDate
# (``PatientContext.read_in_part``).
BIRTH_DATE = "patient.birthDate"
BIRTH_DATE_PAST = "patient.birthDate.past"  # over 122 years ago: a placeholder, or a typo
ONSET = "conditions.onset"
NO_PATIENT = "patient.none"
NO_BIRTH_DATE = "patient.birthDate.none"
# A condition or an order whose status could not be read (``PatientContext.statuses_unread``).
STATUS = "history.status"
# ``Course.start_parts`` of an order whose start no date records (``Course.start_known``).
START_UNRECORDED = 0
# The statuses the medication list shows: taken, or to be taken again.
LISTED = ("active", "on-hold")
# Draft order types, R4 and older (DSTU2 MedicationOrder, DiagnosticOrder; STU3 ProcedureRequest).
ORDER_TYPES = (
    "MedicationRequest",
    "ServiceRequest",
    "DeviceRequest",
    "MedicationOrder",
    "ProcedureRequest",
    "DiagnosticOrder",
)
# The medication orders among them: R4 and STU3's MedicationRequest, DSTU2's MedicationOrder. A
# tuple: a hostile resourceType (a list) is compared, where a set would raise on hashing it.
MEDICATION_REQUESTS = ("MedicationRequest", "MedicationOrder")
# Statuses of a request that is no order: withdrawn, or never one. No draft, history order or
# procedure with one is read: a linezolid entered in error beside the cyclobenzaprine draft made
# the MAO inhibitor card critical, "ordered now".
WITHDRAWN = frozenset(("entered-in-error", "cancelled", "revoked"))


@dataclass(frozen=True)
class Order:
    """A draft order. Medication fields are None when the draft does not say."""

    reference: str
    # The client's own JSON, in its FHIR version: what an update suggestion sends back.
    resource: dict[str, Any]
    # The same resource as R4, read once: what the facts and the procedure check read.
    r4: dict[str, Any] = field(default_factory=dict)
    drug: Drug | None = None
    # What a ServiceRequest or DeviceRequest orders.
    codes: tuple[Code, ...] = ()
    reason_codes: tuple[Code, ...] = ()
    # The highest dose and frequency among the dosage instructions (a taper reads its highest step).
    dose_mg: float | None = None
    units_per_dose: float | None = None
    per_day: float | None = None
    # Administrations a day of each dosage instruction, as listed (None where one does not say).
    step_per_day: tuple[float | None, ...] = ()
    # Units taken a day: instructions taken together add up, a taper counts its highest step.
    units_per_day: float | None = None
    # Days of use, first and last both counted (a FHIR Period.end is the last day it covers).
    planned_days: float | None = None
    duration_basis: str | None = None

    @property
    def key(self) -> str:
        """The order and what it orders: the sandbox reuses one draft id for every drug picked."""
        what = (self.drug.rxcui or self.drug.ingredient) if self.drug else ",".join(c.code for c in self.codes)
        return f"{self.reference}|{what}"

    @property
    def dose_key(self) -> str:
        """The order, what it orders and its dose: what a dose-change swap leaves. The sublingual
        swap keeps its product (Tonmya, one tablet where two were ordered): by ``key`` alone, an
        acceptance the EHR did not apply kept the rule quiet for the unchanged 5.6 mg draft."""
        return f"{self.key}|{self.dose_mg if self.dose_mg is None else round(self.dose_mg, 6)}"


# The history's facts are NamedTuples: a large history makes dozens a call, and a frozen dataclass
# costs twice as much to make (1.7 µs against 0.8); immutable all the same.


class Condition(NamedTuple):
    """An active condition from the problem list."""

    reference: str
    codes: tuple[Code, ...]
    # Every concept of the terminology its codes are in ("liver-cirrhosis"): what rules ask of it.
    concepts: frozenset[str]
    display: str
    onset: date | None
    severity: tuple[Code, ...] = ()
    # The onset is the recordedDate standing in for a missing onset (an acute MI may use it,
    # an old MI never: clinical specification §2).
    onset_from_record: bool = False
    # The last day the onset may be on: a partial date ("2026-08") covers its days, a full one
    # only itself. ``onset`` is the first.
    onset_latest: date | None = None
    # The parts of the onset's date that were recorded: 1 a year alone, 2 a month, 3 a day.
    onset_parts: int = 3
    # A status given could not be read: taken as current, and named in the notice
    # (``conditions._standing``).
    status_unread: bool = False

    def onset_since(self, day: date) -> bool:
        """May the onset be on or after ``day``? A month alone counts for every day it covers: an
        MI recorded as "2026-08" may still be in its recovery window on 21 November (read as 1
        August, it was not, and a contraindication went unsaid). A year alone is too wide to make
        an onset recent: its first day, as a full date's (a critical card on an MI "0–324 days
        ago" would tell the clinician nothing)."""
        latest = self.onset if self.onset_parts == 1 else self.onset_latest or self.onset
        return latest is not None and latest >= day


class Course(NamedTuple):
    """A past or current medication course from the patient's history."""

    reference: str
    drug: Drug
    # Every medication concept of the terminology its drug is in ("maoi-reversible"): what rules ask.
    concepts: frozenset[str]
    start: date
    end: date  # the first day after the course; ``last_day`` is the last day of use
    status: str = "completed"
    # The end is the 14-day assumption for a course of unknown duration (clinical specification
    # §1), not something the record says.
    assumed_end: bool = False
    # The last day at its latest, where the end is a time with a zone that falls on a later day in
    # UTC or where the site is (23:30 in New York is the next day in UTC, 23:00 in UTC the next day
    # in Tokyo): what a washout counts from (``cyclobenzaprine-maoi``).
    last_day_latest: date | None = None
    # How much of the start's date was recorded (1 the year, 2 the month, 3 the day): an order
    # written "2026" is read from 1 January, the earliest it may have run (``start_latest``).
    # START_UNRECORDED: no date it began: read as its recorded last day or, still listed, today
    # (``courses._unstarted``); a finished one with no date at all is no course.
    start_parts: int = 3
    # The end is the record's own (a dosing period's): a start known less well does not move it.
    end_recorded: bool = False

    @property
    def start_known(self) -> bool:
        """Whether any of the start's date was recorded: a course placed by its recorded end, or
        still listed and read as today's, is counted in no figure from its start (days taken, a
        prior course, since when)."""
        return self.start_parts != START_UNRECORDED

    def active_on(self, day: date) -> bool:
        """Running on ``day``, or, its month alone recorded, running if written later in it. A
        year alone is too wide to make a finished course current (as for an onset: its first
        day); an order still listed (active, on hold) is in force by the record's own word, and
        running if written later in its year (read from 1 January, a duplicate relaxant listed
        active since "2026" went unseen, with no word)."""
        late = self.start_parts == 2 or (self.start_parts == 1 and self.status in LISTED)
        return self.start <= day < (self.end_latest if late else self.end)

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def start_latest(self) -> date:
        """The last day the course may have started on: its recorded year's or month's last."""
        return last_day_covered(self.start, self.start_parts)

    @property
    def end_latest(self) -> date:
        """The end, had it started on ``start_latest``."""
        return self.started_on(self.start_latest).end

    def started_on(self, day: date) -> Course:
        """The course as if it began on ``day``, a later day its recorded start allows: a recorded
        end stays where it is (the start then no later than its last day); a planned one moves
        with it (to the last date there is, past it)."""
        if self.end_recorded:
            return self._replace(start=min(day, self.last_day))
        try:
            end = self.end + (day - self.start)
        except OverflowError:  # a course planned to the year 9999
            end = date.max
        return self._replace(start=day, end=end, last_day_latest=None)


@dataclass(frozen=True)
class Procedure:
    """A procedure ordered or done (ServiceRequest, ImagingStudy, DiagnosticReport) that a rule reads."""

    reference: str
    codes: tuple[Code, ...]
    text: str
    # The day it was done or is booked for (occurrence, start, effective or issue), which may be
    # after today; and the day it was ordered (``authoredOn``). Kept apart: a study ordered before
    # an onset may be done after it, and one ordered after it may be booked weeks ahead.
    occurs: date | None
    ordered: date | None
    status: str
    # A draft order of this session (its reference may be a stand-in: a draft may have no id).
    drafted: bool = False
    # Ordered to be done at once (``priority`` stat, asap or urgent), not routine.
    urgent: bool = False

    @property
    def on(self) -> date | None:
        """Its one date: the day done or booked, else the day ordered (None: the record gives none)."""
        return self.occurs or self.ordered


class StatusesUnread(NamedTuple):
    """What the notice names as read without its status: conditions (their words), orders (drugs)."""

    conditions: tuple[str, ...] = ()
    orders: tuple[str, ...] = ()


@dataclass(frozen=True)
class PatientContext:
    patient_id: str
    today: date
    orders: tuple[Order, ...]
    drafts: tuple[Order, ...] = ()
    # A birthDate of a year or a month alone leaves the age a year uncertain: the checks for older
    # adults read the oldest the patient may be, their cards say both (None: no birthDate).
    oldest_age: int | None = None
    youngest_age: int | None = None
    conditions: tuple[Condition, ...] = ()
    courses: tuple[Course, ...] = ()
    # Relevant procedures: from the `imaging` prefetch key (every ServiceRequest) and the drafts.
    procedures: tuple[Procedure, ...] = ()
    # Keys of optional data that could not be had (e.g. "imaging"): rules say so on their cards.
    unavailable: frozenset[str] = field(default_factory=frozenset)
    # The first day of the back symptoms (clinical specification §1, symptom duration), and the
    # day by which they had certainly begun (later where an onset's date was recorded in part).
    symptom_onset: date | None = None
    symptom_onset_latest: date | None = None
    # How much of its date was recorded (``Condition.onset_parts``): a card shows no more.
    symptom_onset_parts: int = 3
    # Finished orders of a drug a check reads with no date they began, named in the notice: one
    # whose end is recorded is among the courses too; one with no date at all is no course, but an
    # MAO inhibitor's last dose is still to be asked (``Course.start_known``, ``end_recorded``).
    undated_orders: tuple[Course, ...] = ()
    # Orders of the history whose drug nothing names (``courses.read_courses``): the history is
    # read in part. The undated ones were read, and are named by themselves.
    unread_orders: int = 0
    # Conditions whose onset given is no date, none standing in (``conditions.read_conditions``).
    undated_conditions: int = 0
    # The drugs of history orders whose status could not be read: no course (``courses.read_courses``).
    status_unread_orders: tuple[str, ...] = ()
    # Why the age is unknown, for the clinician to be told (None: known): ``NO_PATIENT``,
    # ``NO_BIRTH_DATE``, or ``BIRTH_DATE`` (one given that is no date).
    age_unknown: str | None = None

    @cached_property
    def active_courses(self) -> tuple[Course, ...]:
        """The courses running today: what every interaction check reads (most of a history has
        ended), found once a call. An order still in force (active, on hold) dated after today is
        one of them: an EHR a day ahead of the site's zone writes tomorrow's date, and a start
        planned for the coming days runs beside the draft; left out, a critical interaction
        went unsaid."""
        today = self.today
        return tuple(c for c in self.courses if c.active_on(today) or (c.start > today and c.status in LISTED))

    @property
    def read_in_part(self) -> frozenset[str]:
        """What could not be read into facts, for the notice that says so: the medication history
        (an order's drug unnamed), a condition's onset, a status, and why the age is unknown (the older
        adults' checks silent with no word on the screen is what a clinician must not get). Orders
        with no start date are named by the notice themselves (``undated_orders``)."""
        unread = {"medications": self.unread_orders, ONSET: self.undated_conditions, STATUS: any(self.statuses_unread)}
        found = frozenset(name for name, count in unread.items() if count)
        return found | {self.age_unknown} if self.age_unknown else found

    @cached_property
    def statuses_unread(self) -> StatusesUnread:
        """The conditions whose status could not be read (taken as current) and the drugs of the
        orders whose status could not be read (no course), each once, as the notice names them."""
        conditions = tuple(dict.fromkeys(c.display for c in self.conditions if c.status_unread))
        return StatusesUnread(conditions, tuple(dict.fromkeys(self.status_unread_orders)))

    @property
    def symptom_days(self) -> int | None:
        return (self.today - self.symptom_onset).days if self.symptom_onset else None

    @property
    def certain_symptom_days(self) -> int | None:
        """The days the symptoms have certainly lasted: a year alone recorded may be this week."""
        latest = self.symptom_onset_latest or self.symptom_onset
        return (self.today - latest).days if latest else None
