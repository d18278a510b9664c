"""How a card says when a course began and ended: no more than the record gives. A finished
order records no dose taken, so its end is said as the record's (a dosing period's), planned (a
supply, a duration) or assumed (none), never as a last dose. The MAO inhibitor card says both;
the duration card a course's status and what ended, the duplicate card when an order was written
(``cyclobenzaprine-maoi``, ``cyclobenzaprine-duration``, ``muscle-relaxant-duplicate``)."""

from __future__ import annotations

from datetime import date

from cds_service.facts.history import Course
from cds_service.rules.common import date_shown, span_said


def when_ordered(course: Course) -> str:
    """When it was ordered, as much of the date as was recorded."""
    return ordered_on(course.start, course.start_parts) if course.start_known else "no start date recorded"


def ordered_on(day: date, parts: int) -> str:
    """A start recorded in ``parts`` (1 the year, 2 the month, 3 the day), as every card says it:
    "ordered on 2026" read as a day (the clinical review)."""
    if parts == 3:
        return f"ordered on {day.isoformat()}"
    return f"ordered in {date_shown(day, parts)}, day not recorded"


def status_said(course: Course) -> str:
    """Its status as a card says it ("on hold")."""
    return course.status.replace("-", " ")


def what_ended(course: Course) -> str:
    """What ended: the dosing period the record gives, else the course its supply or duration
    plans (a pharmacist's read: "supply ended" overstated a dosing period's end, or a duration's)."""
    return "dosing ended" if course.end_recorded else "planned course ended"


def ended_on(course: Course) -> str:
    """Its course's end; one whose start day was not recorded, read as late as it allows, ended by then."""
    exact = course.start_parts == 3 or course.end_recorded
    return course.last_day.isoformat() if exact else f"by {course.last_day.isoformat()}"


def days_ago(day: date, today: date) -> str:
    days = (today - day).days
    return f"{day.isoformat()}, {span_said(days, days)} ago"


def finished(course: Course, last_day: date, today: date) -> str:
    """A stopped or completed order whose course runs to today or later: when it stopped is not
    recorded, and that, not when it began, is why it counts."""
    ordered = f"{when_ordered(course)}, " if course.start_known else ""
    unknown = "" if course.assumed_end else "stop date not recorded; "
    return f"{course.status}, {ordered}{unknown}{course_end(course, last_day, today)}"


def course_end(course: Course, last_day: date, today: date) -> str:
    """The end the record gives (a dosing period's), plans (a supply, a duration) or, with no
    duration, assumes: a finished order records no dose taken, so "last taken" claimed more
    than the record knows (a pharmacist's read)."""
    ago = (today - last_day).days
    if course.assumed_end:
        days = (course.end - course.start).days
        if ago > 0:
            return f"no duration recorded: an assumed {days}-day course would have ended {days_ago(last_day, today)}"
        when = "would end today" if ago == 0 else f"would run to {last_day}"
        return f"no duration recorded: an assumed {days}-day course {when}"
    if ago > 0:
        return f"{what_ended(course)} {days_ago(last_day, today)}"
    if ago == 0:
        return "dosing ends today" if course.end_recorded else "planned course ends today"
    return f"{'dosing' if course.end_recorded else 'course'} was planned to run to {last_day}"
