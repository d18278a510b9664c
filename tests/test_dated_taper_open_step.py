"""A taper placed by its dates with a step that says no end (clinical specification §1). Last,
it runs on past the dates: the next source says how long, as for an undated taper's open tail
(tests/test_taper_open_tail.py), and only where it reaches past the dates; short of them, or
where nothing says, the course is at least the dates' days: warned when those are already over
the limit, else asked for a duration. Between dated steps, the later step's end bounds it. Read
at the highest step or left unread, 60 tablets lasting 50 days and a taper of 25 dated days had
no card, and a step between two dated ones was asked for a duration beside a 30-day taper."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ago, answered, cards_for, fixture, the_update
from tests.test_days_taken import with_courses

UCUM = "http://unitsofmeasure.org"
DRAFT = "cyclobenzaprine-duration/silent-21-days.json"
ASK = "Specify a cyclobenzaprine duration of at most 21 days"
# Three a day for 5 days, then one a day from the next day on.
SHORT = [("2026-11-21", "2026-11-25", 3), ("2026-11-26", None, 1)]
# Three a day for 25 days, then one a day from the next day on.
LONG = [("2026-11-21", "2026-12-15", 3), ("2026-12-16", None, 1)]


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def step(start: str, end: str | None, times: int) -> dict[str, Any]:
    period = {"start": start} if end is None else {"start": start, "end": end}
    repeat = {"frequency": times, "period": 1, "periodUnit": "d", "boundsPeriod": period}
    return {
        "timing": {"repeat": repeat},
        "doseAndRate": [{"doseQuantity": {"value": 1, "system": UCUM, "code": "{tbl}"}}],
    }


def tablets(count: int) -> dict[str, Any]:
    return {"quantity": {"value": count, "unit": "tablet", "system": UCUM, "code": "{tbl}"}}


def supply(days: int) -> dict[str, Any]:
    return {"expectedSupplyDuration": {"value": days, "unit": "days", "system": UCUM, "code": "d"}}


def taper(request: dict[str, Any], steps: list[tuple[str, str | None, int]], dispense: dict[str, Any] | None) -> None:
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"] = [step(*each) for each in steps]
    draft.pop("dispenseRequest", None)
    if dispense is not None:
        draft["dispenseRequest"] = dispense


def duration_cards(
    client: TestClient, steps: list[tuple[str, str | None, int]], dispense: dict[str, Any] | None
) -> list[dict[str, Any]]:
    request = fixture(DRAFT)
    taper(request, steps, dispense)
    return cards_for(answered(client, request), "cyclobenzaprine-duration")


def periods(resource: dict[str, Any]) -> list[dict[str, str]]:
    return [dosage["timing"]["repeat"]["boundsPeriod"] for dosage in resource["dosageInstruction"]]


def test_a_count_lasts_the_dated_steps_then_the_open_one(client: TestClient) -> None:
    """60 tablets: 15 in the 5 dated days, 45 at one a day: 50 days (the highest step's three a
    day read 20: no card). The update keeps the dates, the open step ending on the 21st day.
    20 tablets: 15 in the dated days, 5 at one a day: 10 days, no card."""
    [card] = duration_cards(client, SHORT, tablets(60))
    assert card["indicator"] == "warning"
    assert card["summary"].endswith(": 50 days planned")
    assert "60 tablets: 15 in the first 5 days, then 1 a day" in card["detail"]
    resource = the_update(card)
    assert periods(resource) == [
        {"start": "2026-11-21", "end": "2026-11-25"},
        {"start": "2026-11-26", "end": "2026-12-11"},
    ]
    assert resource["dispenseRequest"]["quantity"]["value"] == 31
    assert duration_cards(client, SHORT, tablets(20)) == []


def test_a_gap_before_the_open_step_is_the_taper_s(client: TestClient) -> None:
    """Dated to 11-25, the open step from 12-05: 30 tablets last the 14 days to it, then 15 at one
    a day, 29 days; 16 tablets last to 12-05 itself, 15 days, no card."""
    gap = [("2026-11-21", "2026-11-25", 3), ("2026-12-05", None, 1)]
    [card] = duration_cards(client, gap, tablets(30))
    assert card["summary"].endswith(": 29 days planned")
    assert duration_cards(client, gap, tablets(16)) == []


def test_an_open_step_beside_the_last_dated_one_counts_both(client: TestClient) -> None:
    """Three a day 11-21..12-15 and one a day from 12-01 on: 200 tablets, 90 taken in the 25 dated
    days (four a day where both run), 110 at one a day after: 135 days, not 200 at three a day."""
    [card] = duration_cards(client, [("2026-11-21", "2026-12-15", 3), ("2026-12-01", None, 1)], tablets(200))
    assert card["summary"].endswith(": 135 days planned")
    assert "200 tablets: 90 in the first 25 days, then 1 a day" in card["detail"]


def test_a_supply_says_how_long_where_it_reaches_past_the_dates(client: TestClient) -> None:
    """A 30-day supply: 30 days; a 10-day supply reaches 4 days into the open step: no card. A
    20-day supply beside 25 dated days does not reach it: at least 26 days (20 read: no card)."""
    [card] = duration_cards(client, SHORT, supply(30))
    assert card["summary"].endswith(": 30 days planned")
    assert duration_cards(client, SHORT, supply(10)) == []
    [card] = duration_cards(client, LONG, supply(20))
    assert card["summary"].endswith(": at least 26 days planned")


@pytest.mark.parametrize("dispense", [None, tablets(10), supply(3)], ids=["nothing", "10-tablets", "3-day-supply"])
def test_dated_days_over_the_limit_warn_at_least_them(client: TestClient, dispense: dict[str, Any] | None) -> None:
    """25 dated days, then an open step from the 26th: nothing saying how long it runs, or a count
    or a supply short of the dates, the course is at least 26 days, already over the limit: a
    warning, not a request for a duration (nor no card, read as 3.33 or 3 days). The update cuts
    the dated step at the 21st day and leaves out the open one, which begins after it."""
    [card] = duration_cards(client, LONG, dispense)
    assert card["indicator"] == "warning"
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: at least 26 days planned"
    assert "(a taper from 2026-11-21 to 2026-12-15, then a step from 2026-12-16 with no end)" in card["detail"]
    resource = the_update(card)
    assert periods(resource) == [{"start": "2026-11-21", "end": "2026-12-11"}]
    assert resource["dispenseRequest"]["expectedSupplyDuration"]["value"] == 21


def test_dated_days_within_the_limit_ask_for_a_duration(client: TestClient) -> None:
    """5 dated days, then an open step: nothing saying how long it runs, or a count or a supply
    short of the dates (10 tablets are gone on the 4th day): a duration is asked for, as the
    course is unknown; a count or a supply read on its own had been 3.33 or 3 days, no card."""
    for dispense in (None, tablets(10), supply(3)):
        [card] = duration_cards(client, SHORT, dispense)
        assert card["indicator"] == "info"
        assert card["summary"] == ASK


def test_taken_days_and_the_dated_days_over_the_limit_warn(client: TestClient) -> None:
    """10 days taken, then 10 dated days and an open step from the 12th: at least 12 planned, 22:
    warned, the update cutting the course to the 11 days left (the open step beginning after
    them). An open step from the 11th: 21 at least, and a duration is asked for."""
    request = with_courses(21, (12, 3))
    taper(request, [("2026-11-21", "2026-11-30", 3), ("2026-12-02", None, 1)], None)
    [card] = cards_for(answered(client, request), "cyclobenzaprine-duration")
    assert card["summary"].endswith(": 10 taken + at least 12 planned")
    assert periods(the_update(card)) == [{"start": "2026-11-21", "end": "2026-11-30"}]
    request = with_courses(21, (12, 3))
    taper(request, [("2026-11-21", "2026-11-30", 3), ("2026-12-01", None, 1)], None)
    [card] = cards_for(answered(client, request), "cyclobenzaprine-duration")
    assert card["summary"] == ASK


def test_an_open_step_between_dated_steps_ends_by_the_later_one(client: TestClient) -> None:
    """From 11-26 with no end between 11-21..11-25 and 12-01..12-20: the taper is at least 30 days
    to the later step's end (asked for a duration before); 200 tablets say longer, 66.67 days at
    three a day, never shorter than §1's reading (tests/test_dated_taper_open_step_beside.py); no
    update, as whether the open step stops when the next begins no date says. Ending 12-05: 15
    days, no card."""
    middle = [("2026-11-21", "2026-11-25", 3), ("2026-11-26", None, 2)]
    for dispense, days, basis in (
        (None, "30", "a taper from 2026-11-21 to 2026-12-20"),
        (tablets(200), "66.67", "200 tablets at 3 a day"),
    ):
        [card] = duration_cards(client, [*middle, ("2026-12-01", "2026-12-20", 1)], dispense)
        assert card["summary"].endswith(f": {days} days planned")
        assert f"({basis})" in card["detail"]
        assert "suggestions" not in card
        assert "dated instruction with no end before another one begins" in card["detail"]
    assert duration_cards(client, [*middle, ("2026-12-01", "2026-12-05", 1)], None) == []


def test_a_past_dated_taper_s_open_step_counts_its_days_taken(client: TestClient) -> None:
    """A course 25 to 20 days ago at three a day, then one a day, 30 tablets: 18 taken in its 6
    dated days, 12 after, 18 days taken (read at three a day, 10), and 10 more planned warn."""
    request = with_courses(10, (12, 3))
    prior = request["prefetch"]["medications"]["entry"][0]["resource"]
    prior["authoredOn"] = ago(25)
    prior["dosageInstruction"] = [step(ago(25), ago(20), 3), step(ago(19), None, 1)]
    prior["dispenseRequest"] = tablets(30)
    [card] = cards_for(answered(client, request), "cyclobenzaprine-duration")
    assert card["summary"].endswith(": 18 taken + 10 planned")
