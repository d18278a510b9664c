"""The 21-day update of a draft dispensed in fills keeps its fills no larger than the draft's
(clinical specification §2: never more at once than ordered) and enough of them for the course:
21 tablets a week with 3 refills, three a day, was written as one fill of 21 tablets "for 21
days", a week's tablets under the 21-day label (a pharmacist's review)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.facts.orders import UNWRITTEN_LIMIT_REASON
from cds_service.rules.duration_update import SPLIT_REASON
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


def duration_card(
    client: TestClient,
    quantity: dict[str, Any],
    refills: int,
    dosages: list[dict[str, Any]] | None = None,
    **schedule: dict[str, Any],
) -> dict[str, Any]:
    """The duration card for a draft dispensed ``quantity`` a week with ``refills`` (``dosages``:
    else one tablet three times a day; ``schedule``: the draft's ``dispenseInterval`` or
    ``initialFill``)."""
    request = fixture(DRAFT)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 3
    if dosages is not None:
        draft["dosageInstruction"] = dosages
    week = {"value": 7, "unit": "days", "system": UCUM, "code": "d"}
    draft["dispenseRequest"] = {"quantity": quantity, "expectedSupplyDuration": week, "numberOfRepeatsAllowed": refills}
    draft["dispenseRequest"].update(schedule)
    (card,) = cards_for(answered(client, request), "cyclobenzaprine-duration")
    return card


def limited_as(
    client: TestClient, quantity: dict[str, Any], refills: int, dosages: list[dict[str, Any]] | None = None
) -> Any:
    """The duration update's dispense request (``duration_card``)."""
    card = duration_card(client, quantity, refills, dosages)
    return card["suggestions"][0]["actions"][0]["resource"]["dispenseRequest"]


def step(times: int, days: int | None = None, tablets: float = 1, **more: Any) -> dict[str, Any]:
    dose = {"value": tablets, "unit": "tablet", "system": UCUM, "code": "{tablet}"}
    repeat: dict[str, Any] = {"frequency": times, "period": 1, "periodUnit": "d"}
    if days is not None:
        repeat["boundsDuration"] = {"value": days, "unit": "d"}
    return {"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": dose}], **more}


WEEK_OF_TABLETS = {"value": 21, "unit": "tablet", "system": UCUM, "code": "{tablet}"}
TABLETS = {"value": 1, "unit": "tablet", "system": UCUM, "code": "{tablet}"}
ONE_TO_TWO = {"doseRange": {"low": TABLETS, "high": {**TABLETS, "value": 2}}}


MG = {"value": 210, "unit": "mg", "system": UCUM, "code": "mg"}


def test_a_draft_dispensed_in_mg_is_split_in_its_tablets(client: TestClient) -> None:
    """210 mg a week of the 10 mg tablet, 3 refills, is 21 tablets at once: three fills of 21 for
    21 days. Compared as bare numbers, 63 tablets had passed under "210" in one fill: 630 mg at
    once, three times the draft's (§2: never more at once than ordered)."""
    assert supplied(limited_as(client, MG, 3)) == (21, 7, 3)


def test_a_draft_dispensed_in_mg_once_is_capped_in_its_tablets(client: TestClient) -> None:
    """210 mg for a 30-day supply: the update dispenses the 21 tablets that make it, not 63."""
    request = fixture(DRAFT)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 3
    draft["dispenseRequest"] = {"quantity": MG, "expectedSupplyDuration": {"value": 30, "unit": "days", "code": "d"}}
    (card,) = cards_for(answered(client, request), "cyclobenzaprine-duration")
    quantity = card["suggestions"][0]["actions"][0]["resource"]["dispenseRequest"]["quantity"]
    assert (quantity["value"], quantity["code"]) == (21, "{pill}")


@pytest.mark.parametrize(
    ("quantity", "dosages", "schedule"),
    [
        ({"value": 1, "unit": "bottle"}, None, {}),  # a bottle is no count of tablets
        ({"value": 0.5, "unit": "tablet", "system": UCUM, "code": "{tablet}"}, None, {}),
        # A taper: equal fills ran short in its first, three-a-day week.
        (WEEK_OF_TABLETS, [step(3, 7), step(1, 21)], {}),
        # 1–2 tablets three times a day: 21 tablets last 3 to 7 days.
        (WEEK_OF_TABLETS, [{**step(3), "doseAndRate": [ONE_TO_TWO]}], {}),
        # A schedule of fills of its own: a 30-day interval beside 7-day fills left weeks without.
        (WEEK_OF_TABLETS, None, {"dispenseInterval": {"value": 30, "unit": "days", "system": UCUM, "code": "d"}}),
        (WEEK_OF_TABLETS, None, {"initialFill": {"quantity": {**WEEK_OF_TABLETS, "value": 7}}}),
    ],
    ids=["bottle", "half-a-tablet", "taper", "dose-range", "dispense-interval", "initial-fill"],
)
def test_fills_that_cannot_be_split_get_no_update_and_the_card_says_why(
    client: TestClient, quantity: dict[str, Any], dosages: list[dict[str, Any]] | None, schedule: dict[str, Any]
) -> None:
    """One fill at the draft's own quantity with the refills gone had been written "for 21 days":
    21 tablets a week, three a day, a week's tablets under the 21-day label (an adversarial
    review), a bottle or half a tablet in all, a taper's first week only. No update is offered."""
    card = duration_card(client, quantity, 3, dosages, **schedule)
    assert "suggestions" not in card
    assert SPLIT_REASON in card["detail"]


def test_instructions_taken_together_are_split_into_fills(client: TestClient) -> None:
    """One tablet in the morning and two at bedtime, together every day: three a day, as one
    instruction three times a day, 21 tablets with 2 refills, 7 days each."""
    dosages = [step(1, tablets=1, sequence=1), step(1, tablets=2, sequence=1)]
    assert supplied(limited_as(client, WEEK_OF_TABLETS, 3, dosages)) == (21, 7, 3)


def test_a_swap_whose_limit_cannot_be_split_into_fills_is_not_offered(client: TestClient) -> None:
    """The older adult's 5 mg swap carries the 21-day limit (§2: suggestions compose); written
    without it, accepting the swap alone would keep the 28 days, and with it, as one fill of 21
    "for 21 days", a week's tablets. The removal stays; the card says why there is no swap: its
    dose change is withheld, not a change of the course's length (that is the duration card's)."""
    request = fixture(OLDER_ADULT_SWAP)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    week = {"value": 7, "unit": "days", "system": UCUM, "code": "d"}
    draft["dispenseRequest"] = {
        "quantity": WEEK_OF_TABLETS,
        "expectedSupplyDuration": week,
        "numberOfRepeatsAllowed": 3,
    }
    draft["dispenseRequest"]["dispenseInterval"] = {**week, "value": 30}
    (card,) = cards_for(answered(client, request), "cyclobenzaprine-older-adult")
    assert [suggestion["actions"][0]["type"] for suggestion in card["suggestions"]] == ["delete"]
    assert UNWRITTEN_LIMIT_REASON in card["detail"] and SPLIT_REASON not in card["detail"]


# 70 years old, 10 mg three times a day: the older-adult swap and the duration card.
OLDER_ADULT_SWAP = "multiple-rules/older-adult-contained-10mg-medication-swap-leaves-no-orphan.json"
