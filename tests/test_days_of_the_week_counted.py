"""An instruction taken on the days of the week its timing lists (``dayOfWeek``) is counted on those
days alone: once a day on Monday, Wednesday and Friday takes 9 tablets in 21 days. The days were
read nowhere: the 5 mg swap and the 21-day limit each dispensed 21 tablets for it, and the swap's
label left the days out. Its cap of three a day is a dosing day's, as before. Where the course is
dated from its start, its days of the week are counted on the calendar: ten days from a Monday
hold five Mondays, Wednesdays and Fridays, where a week's share of them is 4.3."""

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


def instruction(times: int, days: list[str] | None, bounds: dict[str, str] | None = None) -> dict[str, Any]:
    repeat: dict[str, Any] = {"frequency": times, "period": 1, "periodUnit": "d"}
    if days is not None:
        repeat["dayOfWeek"] = days
    if bounds is not None:
        repeat["boundsPeriod"] = bounds
    return {
        "timing": {"repeat": repeat},
        "doseAndRate": [{"doseQuantity": {"value": 1, "system": UCUM, "code": "{tbl}"}}],
    }


def answer(
    client: TestClient, times: int, count: int, supply: int | None, bounds: dict[str, str] | None = None
) -> dict[str, Any]:
    """The cards for a 10 mg draft taken ``times`` a day on Monday, Wednesday and Friday (within
    ``bounds``), for a patient with hepatic impairment."""
    return answer_for(client, [instruction(times, MON_WED_FRI, bounds)], count, supply)


def answer_for(client: TestClient, dosages: list[dict[str, Any]], count: int, supply: int | None) -> dict[str, Any]:
    request = fixture(HEPATIC)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"] = dosages
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


@pytest.mark.parametrize(
    ("times", "bounds", "count"),
    [
        (2, {"start": "2026-11-23", "end": "2026-12-02"}, 10),  # from a Monday: 5 dosing days, 9 by a week's share
        (1, {"start": "2026-11-24", "end": "2026-12-03"}, 4),  # from a Tuesday: 4 dosing days, 5 by the share
    ],
    ids=["from-a-monday", "from-a-tuesday"],
)
def test_the_swap_counts_the_days_of_the_week_a_dated_course_holds(
    client: TestClient, times: int, bounds: dict[str, str], count: int
) -> None:
    """Ten days dated from their start hold the listed days on the calendar, not 10 × 3/7 of them."""
    _, swapped = suggested(answer(client, times, 20, None, bounds), "cyclobenzaprine-hepatic-impairment")
    assert swapped["dispenseRequest"]["quantity"]["value"] == count


def test_the_limit_counts_a_dated_steps_days_of_the_week_on_the_calendar(client: TestClient) -> None:
    """Twice a day on Monday, Wednesday and Friday from Monday 11-23 to 12-02, then once a day to
    12-31, limited to 21 days: 10 tablets on the first step's 5 dosing days and 11 after, 21; by
    a week's share the first step took 8.6, and 20 were dispensed."""
    taper = [
        instruction(2, MON_WED_FRI, {"start": "2026-11-23", "end": "2026-12-02"}),
        instruction(1, None, {"start": "2026-12-03", "end": "2026-12-31"}),
    ]
    _, limited = suggested(answer_for(client, taper, 60, None), "cyclobenzaprine-duration")
    assert limited["dispenseRequest"]["quantity"]["value"] == 21
