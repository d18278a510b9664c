"""The days of oral cyclobenzaprine already taken in the last 30 days (``cyclobenzaprine-duration``):
a day on which several courses ran counts once, whatever order the history lists them in; a course
is clipped to the 30 days (today among them), and one that ended before them is not named; the
sublingual product, exempt itself, adds no day to the oral product's count."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, ago, cards_for, fixture

RULE = "cyclobenzaprine-duration"
TONMYA = "Tonmya (cyclobenzaprine HCl) 2.8 mg sublingual tablet"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def with_courses(planned: int, *spans: tuple[int, int]) -> dict[str, Any]:
    """The fixture's 10 mg draft planning ``planned`` days, and a completed course of the 10 mg
    tablet for each (first, last) day, in days ago, listed in that order."""
    request = fixture(f"{RULE}/fires-cumulative-prior-course.json")
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dispenseRequest"]["expectedSupplyDuration"]["value"] = planned
    medications = request["prefetch"]["medications"]
    template = medications.pop("entry")[0]["resource"]
    medications["entry"] = []
    for number, (first, last) in enumerate(spans, start=1):
        course = {**template, "id": f"prior-{number}", "status": "completed", "authoredOn": ago(first)}
        del course["dispenseRequest"]
        dosage = {**template["dosageInstruction"][0]}
        dosage["timing"] = {
            "repeat": {**dosage["timing"]["repeat"], "boundsPeriod": {"start": ago(first), "end": ago(last)}}
        }
        course["dosageInstruction"] = [dosage]
        medications["entry"].append({"resource": course})
    medications["total"] = len(spans)
    return request


def duration_cards(client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    return cards_for(client.post(SELECT, json=request).json(), RULE)


@pytest.mark.parametrize(
    ("spans", "taken"),
    [
        # 15 to 6 days ago listed before 20 to 11 days ago: 20 to 6 days ago, 15 days.
        (((15, 6), (20, 11)), 15),
        # 15 to 10 days ago inside 20 to 5 days ago, then 8 to 2 days ago: 20 to 2 days ago, 19 days.
        (((20, 5), (15, 10), (8, 2)), 19),
    ],
)
def test_days_on_which_courses_overlap_count_once(
    client: TestClient, spans: tuple[tuple[int, int], ...], taken: int
) -> None:
    [card] = duration_cards(client, with_courses(14, *spans))
    assert card["summary"].endswith(f": {taken} taken + 14 planned")
    assert f"taken on **{taken} of the last 30 days**" in card["detail"]


def test_a_course_that_ended_before_the_30_days_is_not_named_among_them(client: TestClient) -> None:
    """Its last day 30 days ago: the 30 days run from 29 days ago. Only the course in them is named."""
    [card] = duration_cards(client, with_courses(21, (39, 30), (5, 1)))
    assert card["summary"].endswith(": 5 taken + 21 planned")
    assert f"(course from {ago(5)})" in card["detail"]
    assert ago(39) not in card["detail"]


def test_a_course_begun_today_is_a_day_taken(client: TestClient) -> None:
    """Begun today and planned to run on: today is taken, the days after it are not yet."""
    request = with_courses(21, (0, -13))
    request["prefetch"]["medications"]["entry"][0]["resource"]["status"] = "active"
    assert [card["summary"].split(": ")[-1] for card in duration_cards(client, request)] == ["1 taken + 21 planned"]


def test_a_sublingual_course_adds_no_day_to_the_oral_count(client: TestClient) -> None:
    """Ten days of Tonmya, then 21 days of the oral tablet planned: 21 days, no card. The same ten
    days of the oral tablet: 10 taken + 21 planned."""
    oral = with_courses(21, (10, 1))
    assert [card["summary"].split(": ")[-1] for card in duration_cards(client, oral)] == ["10 taken + 21 planned"]
    sublingual = with_courses(21, (10, 1))
    prior = sublingual["prefetch"]["medications"]["entry"][0]["resource"]
    prior["medicationCodeableConcept"] = {"text": TONMYA}
    prior["dosageInstruction"][0]["doseAndRate"] = [
        {"doseQuantity": {"value": 5.6, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}
    ]
    assert duration_cards(client, sublingual) == []


def at(days: int, time: str = "06:00:00Z") -> str:
    """The instant at ``time`` of the day ``days`` before ``TODAY``, as an EHR writes one."""
    return f"{ago(days)}T{time}"


def with_course_bounds(planned: int, bounds: dict[str, str]) -> dict[str, Any]:
    """``with_courses``' one completed course, written 14 days ago, dosed over ``bounds``."""
    request = with_courses(planned, (14, 4))
    prior = request["prefetch"]["medications"]["entry"][0]["resource"]
    prior["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = bounds
    return request


def said(client: TestClient, request: dict[str, Any]) -> list[str]:
    return [card["summary"].split(": ")[-1] for card in duration_cards(client, request)]


@pytest.mark.parametrize(
    ("bounds", "taken"),
    [
        ({"start": at(14), "end": at(4)}, 10),
        ({"start": at(14, "08:00:00-05:00"), "end": at(4, "08:00:00-05:00")}, 10),
        # An end at another time of day is a day of use (§1), and so is an end's date alone.
        ({"start": at(14), "end": at(4, "18:00:00Z")}, 11),
        ({"start": at(14), "end": ago(4)}, 11),
        # An end with no start: from when it was written, 14 days ago, to its end's own date.
        ({"end": at(4)}, 11),
    ],
    ids=["utc-10-times-24-hours", "local-10-times-24-hours", "ends-later-in-the-day", "end-date", "end-alone"],
)
def test_a_course_ending_at_the_time_of_day_it_starts_is_taken_to_the_day_before(
    client: TestClient, bounds: dict[str, str], taken: int
) -> None:
    """A past course written as 10 × 24 hours (06:00Z to 06:00Z) touches an 11th date on which no
    dose was due: counted to its end's own date, it read a day more taken than a draft written
    the same way plans (the clinical pharmacist's review). Its days of use are read as a draft's."""
    assert said(client, with_course_bounds(12, bounds)) == [f"{taken} taken + 12 planned"]


def test_ten_days_taken_and_eleven_planned_each_as_24_hours_is_21_at_the_limit(client: TestClient) -> None:
    """A history course and a draft both written from 06:00Z to 06:00Z: 10 days taken and 11
    planned are 21, no card (it warned '11 taken + 11 planned'); a day more taken warns."""
    request = with_course_bounds(11, {"start": at(14), "end": at(4)})
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    del draft["dispenseRequest"]
    draft["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": at(0), "end": at(-11)}
    assert said(client, request) == []
    prior = request["prefetch"]["medications"]["entry"][0]["resource"]
    prior["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"] = at(15)
    assert said(client, request) == ["11 taken + 11 planned"]


def test_a_course_over_this_morning_is_not_taken_today_and_still_runs_today(client: TestClient) -> None:
    """06:00Z ten days ago to 06:00Z today: ten days taken, today not among them, while the
    checks of what runs beside the draft still read it to the end's own date (a dose this
    morning may be on board): the duplicate card asks renewal or duplicate."""
    request = with_course_bounds(12, {"start": at(10), "end": at(0)})
    body = client.post(SELECT, json=request).json()
    assert [card["summary"].split(": ")[-1] for card in cards_for(body, RULE)] == ["10 taken + 12 planned"]
    [duplicate] = cards_for(body, "muscle-relaxant-duplicate")
    assert "may still be in use (completed)" in duplicate["summary"]


def test_a_course_over_at_the_start_of_the_30_days_is_not_named_among_them(client: TestClient) -> None:
    """06:00Z 39 days ago to 06:00Z 29 days ago: its last day of use is 30 days ago, before the
    30 days; counted to its end's date, it added a day and was named among them."""
    request = with_courses(21, (39, 30), (5, 1))
    first = request["prefetch"]["medications"]["entry"][0]["resource"]
    first["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": at(39), "end": at(29)}
    [card] = duration_cards(client, request)
    assert card["summary"].endswith(": 5 taken + 21 planned")
    assert f"(course from {ago(5)})" in card["detail"]
    assert ago(39) not in card["detail"]
