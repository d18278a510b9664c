"""When an MAO inhibitor course was last taken, for ``cyclobenzaprine-maoi``: inside its washout
by the calendar (§1's days) or by the clock (an end the record gives as a time), and what the
card says of it; the rule decides what each reading means for its card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cds_service.facts.history import LISTED, Course
from cds_service.rules.common import date_shown
from cds_service.rules.course_said import course_end, days_ago, finished, status_said, what_ended, when_ordered
from cds_service.rules.interactions import listed_undated


@dataclass(frozen=True)
class Seen:
    ingredient: str
    label: str


def started_later(course: Course, today: date) -> Course:
    """The course as if written on the last day its recorded year or month allows (not after
    today); the course itself when its day was recorded."""
    return course if course.start_parts == 3 else course.started_on(min(course.start_latest, today))


def may_be_current(later: Course, today: date) -> str:
    """A listed course whose day was not recorded, written as late as its record allows."""
    runs = (
        f"may run to {later.last_day.isoformat()}"
        if later.last_day >= today
        else f"may have run to {days_ago(later.last_day, today)}"
    )
    return f"{later.drug.name} (listed {status_said(later)}, {when_ordered(later)}: its supply {runs})"


def within_washout(course: Course, today: date, washout_days: int) -> Seen | None:
    """The course, described, when it runs today, starts later, or ended inside the washout."""
    name, ingredient = course.drug.name, course.drug.ingredient
    if not course.start_known and course.end > today:  # no start date, running today by the record
        if course.status in LISTED:
            return Seen(ingredient, f"{name} ({listed_undated(course.status)})")
        return Seen(ingredient, f"{name} ({finished(course, course.last_day, today)})")
    if course.start > today:
        return Seen(ingredient, f"{name} (ordered to start {date_shown(course.start, course.start_parts)})")
    # Counted from the latest of the end's own date, its UTC day and the site's day: a dose at 23:30
    # in New York on the 7th was taken on the 8th in UTC, one at 23:00 UTC the next day in Tokyo.
    last_day = max(course.last_day, course.last_day_latest or course.last_day)
    ago = (today - last_day).days
    if ago <= 0 and course.start == today == last_day:
        return Seen(ingredient, f"{name} (given today)")
    if ago <= 0 and course.status in LISTED:  # a renewal's dosing may have begun long before
        return Seen(ingredient, f"{name} (listed {status_said(course)}, {when_ordered(course)})")
    if ago <= 0:  # stopped or completed, its course not over by the record: when it stopped is not said
        return Seen(ingredient, f"{name} ({finished(course, last_day, today)})")
    if ago < washout_days and course.start_known and course.start_parts < 3:  # read from its first day: later
        days = (course.end - course.start).days
        earliest = f"{days}-day course, so the last dose no earlier than {days_ago(last_day, today)}"
        return Seen(ingredient, f"{name} ({when_ordered(course)}; {earliest})")
    if ago < washout_days and course.status in LISTED:  # the record says taken: the supply, not
        return Seen(
            ingredient, f"{name} (listed {status_said(course)}, {what_ended(course)} {days_ago(last_day, today)})"
        )
    if ago < washout_days:
        return Seen(ingredient, f"{name} ({course.status}, {course_end(course, last_day, today)})")
    return None


def within_hours(course: Course, now: datetime, washout_days: int) -> Seen | None:
    """A course whose end the record gives as a time, ended fewer than the washout's days ago by
    the clock though not by the calendar: linezolid to 21:00 yesterday is 15 hours ago at noon,
    inside its 24 hours, where counted in days (§1: "ended 1 day ago") it was silent (a
    pharmacist's review). Still listed (active) with its dosing so ended, the same (a review of
    the diff). Only ever adds to the days' reading: a time bounds the last dose. The time is said
    where the site is (``now``'s zone), as every date on a card is."""
    if course.ends_at is None:
        return None
    passed = now - course.ends_at
    if not timedelta(0) < passed < timedelta(days=washout_days):
        return None
    hours = int(passed.total_seconds() // 3600)
    ago = f"{hours} hour{'' if hours == 1 else 's'}" if passed < timedelta(days=2) else f"{passed.days} days"
    ended = f"{course.ends_at.astimezone(now.tzinfo):%Y-%m-%d %H:%M}, {'under an hour' if hours == 0 else ago} ago"
    return Seen(course.drug.ingredient, f"{course.drug.name} ({course.status}, {what_ended(course)} {ended})")
