"""The 21-day update of a draft dispensed in fills keeps its fills no larger than the draft's
(clinical specification §2: never more at once than ordered) and enough of them for the course:
21 tablets a week with 3 refills, three a day, was written as one fill of 21 tablets "for 21
days", a week's tablets under the 21-day label (a pharmacist's review)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture

DRAFT = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
UCUM = "http://unitsofmeasure.org"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def limited(client: TestClient, tablets: int, supply_days: int, refills: int, course_days: int = 0) -> dict[str, Any]:
    """The dispense request of the duration card's update for 10 mg three times a day, dispensed
    ``tablets`` for ``supply_days`` with ``refills``, the dosage bounded to ``course_days``
    (0: not bounded)."""
    request = fixture(DRAFT)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    repeat = draft["dosageInstruction"][0]["timing"]["repeat"]
    repeat["frequency"] = 3
    if course_days:
        repeat["boundsDuration"] = {"value": course_days, "unit": "days", "system": UCUM, "code": "d"}
    draft["dispenseRequest"] = {
        "quantity": {"value": tablets, "unit": "tablet", "system": UCUM, "code": "{tablet}"},
        "expectedSupplyDuration": {"value": supply_days, "unit": "days", "system": UCUM, "code": "d"},
        "numberOfRepeatsAllowed": refills,
    }
    (card,) = cards_for(answered(client, request), "cyclobenzaprine-duration")
    (suggestion,) = card["suggestions"]
    return suggestion["actions"][0]["resource"]["dispenseRequest"]


def supplied(dispense: dict[str, Any]) -> tuple[float, float, int]:
    """Per fill: (tablets, days), and the fills."""
    return (
        dispense["quantity"]["value"],
        dispense["expectedSupplyDuration"]["value"],
        dispense["numberOfRepeatsAllowed"] + 1,
    )


def test_weekly_fills_become_three_for_21_days(client: TestClient) -> None:
    assert supplied(limited(client, 21, 7, 3)) == (21, 7, 3)


def test_fills_that_do_not_divide_the_course_are_made_equal(client: TestClient) -> None:
    """42 tablets for 14 days with 2 refills: two fills of 32 (63 tablets, rounded up), none
    larger than the draft's 42, each the whole days its tablets last (10; it had said 10.5)."""
    assert supplied(limited(client, 42, 14, 2)) == (32, 10, 2)


def test_never_more_fills_than_the_draft_had(client: TestClient) -> None:
    """A 30-day course dispensed 21 tablets a week with 1 refill: two fills of the draft's 21 at
    most (42 in all, 7 days each), though 21 days at three a day take 63."""
    assert supplied(limited(client, 21, 7, 1, course_days=30)) == (21, 7, 2)


def test_one_fill_that_holds_the_course_has_no_refills(client: TestClient) -> None:
    assert supplied(limited(client, 90, 30, 2)) == (63, 21, 1)


def limited_as(
    client: TestClient, quantity: dict[str, Any], refills: int, dosages: list[dict[str, Any]] | None = None
) -> Any:
    """The duration update's dispense request for a draft dispensed ``quantity`` a week with
    ``refills`` (``dosages``: else one tablet three times a day)."""
    request = fixture(DRAFT)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 3
    if dosages is not None:
        draft["dosageInstruction"] = dosages
    week = {"value": 7, "unit": "days", "system": UCUM, "code": "d"}
    quantity = dict(quantity)
    interval = quantity.pop("interval", None)
    draft["dispenseRequest"] = {"quantity": quantity, "expectedSupplyDuration": week, "numberOfRepeatsAllowed": refills}
    if interval is not None:
        draft["dispenseRequest"]["dispenseInterval"] = {"value": interval, "unit": "days", "system": UCUM, "code": "d"}
    (card,) = cards_for(answered(client, request), "cyclobenzaprine-duration")
    return card["suggestions"][0]["actions"][0]["resource"]["dispenseRequest"]


def step(times: int, days: int) -> dict[str, Any]:
    dose = {"value": 1, "unit": "tablet", "system": UCUM, "code": "{tablet}"}
    repeat = {"frequency": times, "period": 1, "periodUnit": "d", "boundsDuration": {"value": days, "unit": "d"}}
    return {"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": dose}]}


@pytest.mark.parametrize(
    ("quantity", "dosages"),
    [
        ({"value": 1, "unit": "bottle"}, None),  # a bottle is no count of tablets: it became 1 tablet a fill
        ({"value": 210, "unit": "mg", "system": UCUM, "code": "mg"}, None),
        ({"value": 0.5, "unit": "tablet", "system": UCUM, "code": "{tablet}"}, None),
        # A taper: equal fills ran short in its first, three-a-day week.
        ({"value": 21, "unit": "tablet", "system": UCUM, "code": "{tablet}"}, [step(3, 7), step(1, 21)]),
        # A schedule of fills of its own: a 30-day interval beside 7-day fills left weeks without.
        ({"value": 21, "unit": "tablet", "system": UCUM, "code": "{tablet}", "interval": 30}, None),
    ],
    ids=["bottle", "mg", "half-a-tablet", "taper", "dispense-interval"],
)
def test_fills_are_kept_only_for_one_dose_counted_in_units(
    client: TestClient, quantity: dict[str, Any], dosages: list[dict[str, Any]] | None
) -> None:
    """Else the update is one fill, as before: the review of the change found a bottle made three
    tablets in all, 210 mg a week one fill of 63 tablets, and a taper's first fill short."""
    dispense = limited_as(client, quantity, 3, dosages)
    assert dispense["numberOfRepeatsAllowed"] == 0
