"""A planned duration past any course (a supply of 1,000,000 days, 1e308 days, "2800 years", a
boundsDuration of 1e15 days, a bounds period to 9999) is known to be over 2–3 weeks: the duration
warning, said as "over 100 years", never the info card asking for a duration (it was read as
unknown past 1,000,000 days, the limit of a plausible number), nor a 309-digit count. The
21-day update is the same as for any long order. A negative or zero duration says nothing, as
an EHR's blank 0 does: the next source is read, and with none, the duration is unknown."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture, the_update

RULE = "cyclobenzaprine-duration"
DAYS = {"system": "http://unitsofmeasure.org", "code": "d", "unit": "days"}
YEARS = {"system": "http://unitsofmeasure.org", "code": "a", "unit": "years"}


@pytest.fixture
def client(module_client: TestClient) -> TestClient:
    return module_client


def _draft(request: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = request["context"]["draftOrders"]["entry"][0]["resource"]
    return resource


def supplied(duration: dict[str, Any] | None, per_day: int = 1) -> dict[str, Any]:
    """The sandbox's 30-day order of one tablet ``per_day`` times a day, its supply ``duration``
    (None: no supply, no quantity)."""
    request = fixture(f"{RULE}/fires-sandbox-30-day-supply.json")
    draft = _draft(request)
    draft["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = per_day
    if duration is None:
        del draft["dispenseRequest"]["expectedSupplyDuration"]
    else:
        draft["dispenseRequest"]["expectedSupplyDuration"] = duration
    return request


def bounded(duration: dict[str, Any]) -> dict[str, Any]:
    request = supplied(None)
    _draft(request)["dosageInstruction"][0]["timing"]["repeat"]["boundsDuration"] = duration
    return request


def until_9999() -> dict[str, Any]:
    request = supplied(None)
    period = {"start": "2026-11-21", "end": "9999-12-31"}
    _draft(request)["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = period
    return request


def card_of(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    [card] = cards_for(client.post(SELECT, json=request).json(), RULE)
    return card


ABSURD = {
    "a supply of 1,000,000 days": lambda: supplied({**DAYS, "value": 1_000_000}),
    "a supply of 1e308 days": lambda: supplied({**DAYS, "value": 1e308}),
    "a supply of 2800 years": lambda: supplied({**YEARS, "value": 2800}),
    "a supply of 999,999 days": lambda: supplied({**DAYS, "value": 999_999}),
    "a boundsDuration of 1e15 days": lambda: bounded({**DAYS, "value": 1e15}),
    "a bounds period to 9999": until_9999,
}


@pytest.mark.parametrize("make", ABSURD.values(), ids=ABSURD.keys())
def test_a_course_past_a_century_is_warned_of_in_years(client: TestClient, make: Any) -> None:
    card = card_of(client, make())
    assert card["indicator"] == "warning"
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: over 100 years planned"
    assert "This order plans **over 100 years** of cyclobenzaprine" in card["detail"]
    assert not re.search(r"\d{6}", card["summary"] + card["detail"])  # no count of days to work out
    update = the_update(card)
    dispense = update["dispenseRequest"]
    assert dispense["expectedSupplyDuration"]["value"] == 21
    assert dispense["quantity"]["value"] == 21  # one tablet once a day
    assert dispense.get("numberOfRepeatsAllowed", 0) == 0
    [dosage] = update["dosageInstruction"]
    repeat = dosage["timing"]["repeat"]
    assert repeat.get("boundsDuration", {}).get("value") == 21 or repeat["boundsPeriod"] == {
        "start": "2026-11-21",
        "end": "2026-12-11",
    }


def test_the_update_counts_the_tablets_of_each_day(client: TestClient) -> None:
    """Three a day for a million days: 63 tablets for the 21 days, as for a 30-day order."""
    update = the_update(card_of(client, supplied({**DAYS, "value": 1_000_000}, per_day=3)))
    assert update["dispenseRequest"]["quantity"]["value"] == 63


@pytest.mark.parametrize(("days", "said"), [(36525, "36525 days"), (36526, "over 100 years")])
def test_a_century_is_where_days_give_way_to_years(client: TestClient, days: int, said: str) -> None:
    card = card_of(client, supplied({**DAYS, "value": days}))
    assert card["summary"] == f"Limit cyclobenzaprine to 2–3 weeks: {said} planned"


def test_taken_and_a_course_past_a_century(client: TestClient) -> None:
    request = fixture(f"{RULE}/fires-cumulative-prior-course.json")
    _draft(request)["dispenseRequest"]["expectedSupplyDuration"] = {**DAYS, "value": 1e308}
    card = card_of(client, request)
    assert card["indicator"] == "warning"
    assert re.fullmatch(r"Limit cyclobenzaprine to 2–3 weeks: \d+ taken \+ over 100 years planned", card["summary"])
    assert "this order plans **over 100 years more**" in card["detail"]


@pytest.mark.parametrize("value", [0, -5, -1e308])
@pytest.mark.parametrize("where", ["supply", "boundsDuration"])
def test_a_duration_of_zero_or_less_is_no_duration(client: TestClient, value: float, where: str) -> None:
    request = supplied({**DAYS, "value": value}) if where == "supply" else bounded({**DAYS, "value": value})
    card = card_of(client, request)
    assert card["indicator"] == "info"
    assert card["summary"] == "Specify a cyclobenzaprine duration of at most 21 days"


def test_an_absurd_count_of_tablets_is_said_in_words_not_digits(client: TestClient) -> None:
    """1e300 tablets at one a day: "over 1,000,000,000 tablets", where the card's line counted
    out 301 digits (a code review)."""
    request = supplied(None)
    _draft(request)["dispenseRequest"]["quantity"] = {"value": 1e300, "unit": "tablet"}
    card = card_of(client, request)
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: over 100 years planned"
    assert "(over 1,000,000,000 tablets at 1 a day)" in card["detail"]
    assert len(card["detail"]) < 600
