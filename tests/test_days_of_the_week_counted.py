"""An instruction taken on the days of the week its timing lists (``dayOfWeek``) is counted on those
days alone: once a day on Monday, Wednesday and Friday takes 9 tablets in 21 days. The days were
read nowhere: the 5 mg swap and the 21-day limit each dispensed 21 tablets for it, and the swap's
label left the days out. Its cap of three a day is a dosing day's, as before."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture

UCUM = "http://unitsofmeasure.org"
HEPATIC = "cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-10mg.json"
MON_WED_FRI = ["mon", "wed", "fri"]


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def answer(client: TestClient, times: int, count: int, supply: int | None) -> dict[str, Any]:
    """The cards for a 10 mg draft taken ``times`` a day on Monday, Wednesday and Friday, for a
    patient with hepatic impairment."""
    request = fixture(HEPATIC)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    repeat = {"frequency": times, "period": 1, "periodUnit": "d", "dayOfWeek": MON_WED_FRI}
    draft["dosageInstruction"] = [
        {"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": {"value": 1, "system": UCUM, "code": "{tbl}"}}]}
    ]
    draft["dispenseRequest"] = {"quantity": {"value": count, "unit": "tablet"}}
    if supply is not None:
        draft["dispenseRequest"]["expectedSupplyDuration"] = {
            "value": supply,
            "unit": "days",
            "system": UCUM,
            "code": "d",
        }
    return answered(client, request)


def suggested(body: dict[str, Any], rule: str) -> tuple[str, dict[str, Any]]:
    """The label and the updated draft of ``rule``'s one update."""
    [(label, resource)] = [
        (suggestion["label"], action["resource"])
        for card in cards_for(body, rule)
        for suggestion in card["suggestions"]
        for action in suggestion["actions"]
        if action["type"] == "update"
    ]
    return label, resource


@pytest.mark.parametrize(("count", "supply"), [(90, 30), (90, None)], ids=["30-day-supply", "count-alone"])
def test_both_updates_dispense_what_three_days_a_week_take(client: TestClient, count: int, supply: int | None) -> None:
    body = answer(client, 1, count, supply)
    label, swapped = suggested(body, "cyclobenzaprine-hepatic-impairment")
    assert "1 tablet once a day on Mon, Wed, Fri (limited to 21 days)" in label
    assert swapped["dosageInstruction"][0]["timing"]["repeat"]["dayOfWeek"] == MON_WED_FRI
    assert swapped["dispenseRequest"]["quantity"]["value"] == 9
    _, limited = suggested(body, "cyclobenzaprine-duration")
    assert limited["dispenseRequest"]["quantity"]["value"] == 9


def test_a_count_alone_lasts_the_weeks_it_takes(client: TestClient) -> None:
    """90 tablets at three a week is 210 days planned, not 90."""
    [card] = cards_for(answer(client, 1, 90, None), "cyclobenzaprine-duration")
    assert "210 days planned" in card["summary"]


def test_the_cap_is_a_dosing_days(client: TestClient) -> None:
    """Four times a day on three days a week: three of the 5 mg tablet on those days, 18 for 14 days."""
    label, swapped = suggested(answer(client, 4, 56, 14), "cyclobenzaprine-hepatic-impairment")
    assert label.endswith("1 tablet three times a day on Mon, Wed, Fri")
    assert swapped["dosageInstruction"][0]["timing"]["repeat"]["frequency"] == 3
    assert swapped["dispenseRequest"]["quantity"]["value"] == 18
