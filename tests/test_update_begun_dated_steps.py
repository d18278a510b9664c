"""The 21-day update of dated instructions that began before the order was written is never an
order already over (clinical specification §2), as for one instruction: morning and bedtime,
both dated from five weeks before to a month after it was written, were cut to their first 21
days, all past, where the same order as one instruction twice a day got 21 days from now (an
adversarial review)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TODAY, answered, cards_for, fixture

DRAFT = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
UCUM = "http://unitsofmeasure.org"
TWENTY_ONE_DAYS = {"value": 21, "unit": "days", "system": UCUM, "code": "d"}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def dated(first: int, last: int, *, times: int = 1, when: str = "") -> dict[str, Any]:
    """One tablet ``times`` a day (at ``when``), dated from ``first`` to ``last`` days after TODAY."""
    repeat: dict[str, Any] = {"frequency": times, "period": 1, "periodUnit": "d"}
    if when:
        repeat["when"] = [when]
    repeat["boundsPeriod"] = {"start": day(first), "end": day(last)}
    dose = {"value": 1, "system": UCUM, "code": "{pill}"}
    return {"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": dose}]}


def duration_card(client: TestClient, dosages: list[dict[str, Any]]) -> dict[str, Any]:
    """The duration card for the draft written TODAY with ``dosages`` and 140 tablets."""
    request = fixture(DRAFT)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["authoredOn"] = TODAY.isoformat()
    draft["dosageInstruction"] = dosages
    draft["dispenseRequest"] = {"quantity": {"value": 140, "system": UCUM, "code": "{pill}"}}
    (card,) = cards_for(answered(client, request), "cyclobenzaprine-duration")
    return card


def limited(card: dict[str, Any]) -> dict[str, Any]:
    (suggestion,) = card["suggestions"]
    resource: dict[str, Any] = suggestion["actions"][0]["resource"]
    return resource


def test_instructions_together_since_before_it_was_written_get_21_days_from_now(client: TestClient) -> None:
    together = limited(duration_card(client, [dated(-36, 30, when="MORN"), dated(-36, 30, when="HS")]))
    alone = limited(duration_card(client, [dated(-36, 30, times=2)]))
    repeats = [dosage["timing"]["repeat"] for dosage in together["dosageInstruction"]]
    assert [repeat.get("boundsPeriod") for repeat in repeats] == [None, None]
    assert [repeat["boundsDuration"] for repeat in repeats] == [TWENTY_ONE_DAYS, TWENTY_ONE_DAYS]
    assert together["dispenseRequest"]["quantity"]["value"] == 42
    assert together["dispenseRequest"]["expectedSupplyDuration"] == TWENTY_ONE_DAYS
    assert alone["dispenseRequest"]["quantity"] == together["dispenseRequest"]["quantity"]


def test_steps_begun_before_it_was_written_on_other_days_get_no_update_and_the_card_says_why(
    client: TestClient,
) -> None:
    """A step that ended last month and one from tomorrow: cut by date from the first, the update
    kept the past step alone."""
    card = duration_card(client, [dated(-50, -20), dated(1, 30)])
    assert "suggestions" not in card
    assert "The order's dated instructions began before it was written" in card["detail"]


@pytest.mark.parametrize(
    "dosages",
    [[dated(-20, 9, times=3)], [dated(-20, 7, when="MORN"), dated(-20, 7, when="HS")]],
    ids=["one-instruction", "morning-and-bedtime"],
)
def test_a_course_begun_before_it_was_written_that_ends_sooner_than_the_limit_gets_no_update(
    client: TestClient, dosages: list[dict[str, Any]]
) -> None:
    """From 20 days before it was written to 9 (or 7) days after: 21 days from then ran past the
    draft's own last day, a course lengthened under a "Limit to 21 days" label. No update is
    offered, and the card says why."""
    card = duration_card(client, dosages)
    assert "suggestions" not in card
    assert "began before it was written and end before a shortened course" in card["detail"]
