"""The plain facts rules read: orders, procedures, the patient and its history (the conditions
and medication courses, ``facts.history``). ``cds_service.facts`` builds them from the hook
request's JSON.

An order's facts are read out of FHIR once: a dose in mg, administrations per day and a planned
duration in days (clinical specification §1). The draft's own JSON rides along with them
(``Order.resource``, as the client sent it; ``Order.r4``, the same as R4): a suggestion that
updates the draft sends back the client's resource with only what the card changes changed, so
the rules that write one (``rules/common.py``, ``duration_update.py``, ``product_swap.py`` and
what they call) copy and read its dosage instructions and dispense request, and
``rules/common.py`` words a sublingual dose from them ("2.8 mg up to twice a day").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any, NamedTuple

from cds_service.content.terminology import Drug
from cds_service.facts.history import LISTED, Condition, Course
from cds_service.fhir.coding import Code

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
class Reason:
    """Why an order is given, as the facts read it (no rule reads it from the JSON): its codes, whether
    it gives a reason at all (coded, in words or by reference: an order with its own reason is not
    read by the problem list's), and the conditions it refers to, as written."""

    codes: tuple[Code, ...] = ()
    given: bool = False
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Order:
    """A draft order. Medication fields are None when the draft does not say."""

    reference: str
    # The client's own JSON, in its FHIR version: what an update suggestion sends back.
    resource: dict[str, Any]
    # The same resource as R4, read once: what the facts and the procedure check read.
    r4: dict[str, Any] = field(default_factory=dict)
    drug: Drug | None = None
    # The sublingual brands the drug's words name that its codes rule out (Tonmya beside the oral
    # 10 mg tablet's code): an update leaves them out of its name (``rules.safe_update``).
    brands_unread: tuple[str, ...] = ()
    # What a ServiceRequest or DeviceRequest orders.
    codes: tuple[Code, ...] = ()
    reason: Reason = field(default_factory=lambda: Reason())
    # The highest dose and frequency among the dosage instructions (a taper reads its highest step).
    dose_mg: float | None = None
    # That dose is the most of several the order allows (1–2 tablets, a taper's steps): "up to" it.
    dose_up_to: bool = False
    units_per_dose: float | None = None
    per_day: float | None = None
    # Administrations a day of each dosage instruction, as listed (None where one does not say).
    step_per_day: tuple[float | None, ...] = ()
    # Units taken a day: instructions taken together add up, a taper counts its highest step.
    units_per_day: float | None = None
    # Days of use, first and last both counted (a FHIR Period.end is the last day it covers).
    planned_days: float | None = None
    # Planned days unknown, the days the dates already plan: a dated taper whose last step says
    # no end, nothing saying how long it runs (``facts.steps.dated_tail``). The course is longer.
    planned_at_least: float | None = None
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
        acceptance the EHR did not apply kept the rule quiet for the unchanged 5.6 mg draft. Its
        low dose is once a day too: 2.8 mg twice a day has the dose its swap leaves, so how often
        is part of its key (the tablets' is not: their swap changes the dose, and the sandbox
        applies a swap's drug alone, keeping the frequency)."""
        dose = f"{self.key}|{self.dose_mg if self.dose_mg is None else round(self.dose_mg, 6)}"
        if self.drug is None or not self.drug.sublingual:
            return dose
        return f"{dose}|{self.per_day if self.per_day is None else round(self.per_day, 6)}"


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
    today: date  # the site's day at ``now``
    now: datetime  # the service's clock, in the site's zone: a washout counted in hours reads it
    # The orders under review (the hook's context says which: order-select's selections,
    # order-sign's every draft), what the rules judge; ``drafts``: every draft order of the call.
    under_review: tuple[Order, ...]
    drafts: tuple[Order, ...] = ()
    # A birthDate of a year or a month alone leaves the age a year uncertain: the checks for older
    # adults read the oldest the patient may be, their cards say both (None: no birthDate).
    oldest_age: int | None = None
    youngest_age: int | None = None
    conditions: tuple[Condition, ...] = ()
    courses: tuple[Course, ...] = ()
    # Relevant procedures (lumbar imaging, physical therapy, ...): from the drafts and the `imaging`
    # prefetch key, which holds every ServiceRequest (the service orders), not only imaging.
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
