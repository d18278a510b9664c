"""A taper whose last step says no end: its bounds say no last day, so the course is read from
the next source (clinical specification §1), and a quantity lasts the bounded steps' own tablets,
then the rest at the tail's rate. Read from the first step's 5 days alone, 60 tablets of three a
day for 5 days then once a day (50 days) had no duration card, nor had a 30-day supply."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture

UCUM = "http://unitsofmeasure.org"
DRAFT = "cyclobenzaprine-duration/silent-21-days.json"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def step(times: int, sequence: int, days: int | None = None) -> dict[str, Any]:
    repeat: dict[str, Any] = {"frequency": times, "period": 1, "periodUnit": "d"}
    if days is not None:
        repeat["boundsDuration"] = {"value": days, "unit": "days", "system": UCUM, "code": "d"}
    dose = {"value": 1, "system": UCUM, "code": "{pill}"}
    return {"sequence": sequence, "timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": dose}]}


TAPER = [step(3, 1, days=5), step(1, 2)]


def duration_cards(
    client: TestClient, dispense: dict[str, Any] | None, dosages: list[dict[str, Any]] = TAPER
) -> list[dict[str, Any]]:
    request = fixture(DRAFT)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"] = dosages
    draft.pop("dispenseRequest", None)
    if dispense is not None:
        draft["dispenseRequest"] = dispense
    return cards_for(answered(client, request), "cyclobenzaprine-duration")


def pills(count: int) -> dict[str, Any]:
    return {"quantity": {"value": count, "system": UCUM, "code": "{pill}"}}


def supply(days: int) -> dict[str, Any]:
    return {"expectedSupplyDuration": {"value": days, "unit": "days", "system": UCUM, "code": "d"}}


def test_the_quantity_lasts_the_first_step_then_the_open_tail(client: TestClient) -> None:
    """60 tablets: 15 in the first 5 days, 45 at one a day: 50 days (§1's highest rate reads 20).
    The 21-day update keeps the 5 days and 16 of the tail: 31 tablets."""
    [card] = duration_cards(client, pills(60))
    assert "50 days planned" in card["summary"]
    assert "60 pills: 15 in the first 5 days, then 1 a day" in card["detail"]
    [action] = card["suggestions"][0]["actions"]
    assert action["resource"]["dispenseRequest"]["quantity"]["value"] == 31


def test_a_supply_says_how_long_but_never_less_than_the_steps_that_say_their_days(client: TestClient) -> None:
    """A 30-day supply: 30 days. A 3-day supply beside a first step of 30 days: the step's stand."""
    [card] = duration_cards(client, {**pills(100), **supply(30)})
    assert "30 days planned" in card["summary"]
    assert "a 30-day supply" in card["detail"]
    [card] = duration_cards(client, supply(3), [step(3, 1, days=30), step(1, 2)])
    assert "30 days planned" in card["summary"]


def test_nothing_past_the_first_step_asks_for_a_duration(client: TestClient) -> None:
    """No supply, no quantity: how long the tail runs, nothing says."""
    [card] = duration_cards(client, None)
    assert card["summary"] == "Specify a cyclobenzaprine duration of at most 21 days"
