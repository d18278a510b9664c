"""The history's facts: the problem list's conditions and the medication courses (clinical
specification §1: a course has a first and a last day). ``cds_service.facts.conditions`` and
``courses`` build them from the hook request's JSON; ``facts.model`` holds the drafts and the
patient they are read for.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import NamedTuple

from cds_service.content.terminology import Drug
from cds_service.fhir.coding import Code
from cds_service.fhir.json import last_day_covered

# ``Course.start_parts`` of an order whose start no date records (``Course.start_known``).
START_UNRECORDED = 0
# The statuses the medication list shows: taken, or to be taken again.
LISTED = ("active", "on-hold")


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
    end: date  # the first day after the course; ``last_day`` its last (``taken_to``: the last taken)
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
    # The last day taken of a dosing period that ends at the time of day it starts (06:00Z to
    # 06:00Z): the day before its end's date, as a draft so written is read (``taken_to``).
    # ``end`` keeps the end's own date, the later reading, which a washout and what runs beside
    # a draft are read by. None: ``last_day``.
    taken_to_day: date | None = None
    # The end as the instant the record gives (a dosing period ending at a time with a zone, in
    # UTC): a washout counted in hours from it (``cyclobenzaprine-maoi``). None: a date alone.
    ends_at: datetime | None = None
    # Taken as needed, its end read from its supply at the most doses a day allowed (§1's
    # ``frequencyMax``, no dosage bounds saying how long): the soonest it runs out, not when it
    # does. The days taken count to that end all the same; still listed, it is in force
    # (``active_on``).
    as_needed_supply: bool = False

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
        active since "2026" went unseen, with no word). An as-needed order still listed runs from
        its start whatever its supply's soonest end (``as_needed_supply``), as one whose length is
        unknown runs until today (§1): 30 tizanidine tablets up to every 8 hours, listed active 15
        days on, were read as over after 10, and ciprofloxacin ordered now had no critical card."""
        if self.as_needed_supply and self.status in LISTED:
            return self.start <= day
        late = self.start_parts == 2 or (self.start_parts == 1 and self.status in LISTED)
        return self.start <= day < (self.end_latest if late else self.end)

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def taken_to(self) -> date:
        """The last day a dose was taken, what the days taken count to: no dose is due at the
        instant a course written 06:00Z to 06:00Z is over, so its end's date is not one."""
        return self.taken_to_day or self.last_day

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
        return self._replace(start=day, end=end, last_day_latest=None, ends_at=None)
