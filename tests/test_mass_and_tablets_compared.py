"""A draft may dispense a mass (300 mg) where its first fill counts tablets, or the reverse, and
the 5 mg swap counts tablets of another strength than the draft's. The 21-day update reads every
such quantity as the tablets it makes of the drug it names (``facts.steps.tablets_of``): an mg
first fill beside a count of tablets was dropped as "another unit" (a code review). The swap,
one 5 mg tablet a dose where the draft took one 10 mg tablet, counts a mass as the days it lasts
(300 mg of 10 mg three times a day: 10 days, 30 tablets): counted as the 60 tablets of 5 mg it
makes, it doubled the draft's days (a pharmacist's review)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, fixture

DURATION = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
# 10 mg, whose 5 mg swap carries the duration limit: a 70-year-old's, and one with hepatitis C.
SWAPS = {
    "cyclobenzaprine-older-adult": "multiple-rules/older-adult-contained-10mg-medication-swap-leaves-no-orphan.json",
    "cyclobenzaprine-hepatic-impairment": "cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-10mg.json",
}
UCUM = "http://unitsofmeasure.org"
MONTH = {"value": 30, "unit": "days", "system": UCUM, "code": "d"}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def mg(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "mg", "system": UCUM, "code": "mg"}


def tablets(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "tablet", "system": UCUM, "code": "{tablet}"}


def updates(client: TestClient, request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each update's dispense request, by the rule of its card."""
    return {
        card["source"]["topic"]["code"]: action["resource"]["dispenseRequest"]
        for card in answered(client, request)["cards"]
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
        if action["type"] == "update"
    }


def limited(client: TestClient, dispense: dict[str, Any], *, timing: bool = True) -> dict[str, Any]:
    """The 21-day update's dispense of the sandbox's 10 mg draft, three a day (``timing``: else
    how often is not coded, and the course's quantity is the draft's for the days kept)."""
    request = fixture(DURATION)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 3
    if not timing:
        del draft["dosageInstruction"][0]["timing"]
    draft["dispenseRequest"] = {**dispense, "expectedSupplyDuration": MONTH}
    return updates(client, request)["cyclobenzaprine-duration"]


@pytest.mark.parametrize(
    ("fill", "kept"),
    [
        (mg(300), mg(300)),  # 30 tablets of the course's 63: kept as written
        (mg(900), tablets(63)),  # 90 tablets: no more at once than the course, in its unit
        (tablets(30), tablets(30)),  # unchanged: a count beside a count
        (tablets(90), tablets(63)),
    ],
    ids=["mg-within", "mg-over", "count-within", "count-over"],
)
def test_a_first_fill_in_mg_beside_tablets_is_compared_in_tablets(
    client: TestClient, fill: dict[str, Any], kept: dict[str, Any]
) -> None:
    dispense = limited(client, {"quantity": tablets(90), "initialFill": {"quantity": fill}})
    assert dispense["quantity"] == tablets(63)
    assert dispense["initialFill"] == {"quantity": kept}


@pytest.mark.parametrize(
    ("fill", "kept"),
    [(tablets(7), tablets(7)), (tablets(90), mg(630)), (mg(70), mg(70))],
    ids=["count-within", "count-over", "mg-within"],
)
def test_a_first_fill_in_tablets_beside_a_mass_is_compared_in_tablets(
    client: TestClient, fill: dict[str, Any], kept: dict[str, Any]
) -> None:
    """How often not coded: the course is the draft's 900 mg for 21 of its 30 days, 630 mg (63
    tablets of 10 mg), which a fill of 7 tablets is within and one of 90 is not."""
    dispense = limited(client, {"quantity": mg(900), "initialFill": {"quantity": fill}}, timing=False)
    assert dispense["quantity"] == mg(630)
    assert dispense["initialFill"] == {"quantity": kept}


def test_a_first_fill_in_another_unit_still_goes(client: TestClient) -> None:
    dispense = limited(client, {"quantity": tablets(90), "initialFill": {"quantity": {"value": 5, "unit": "mL"}}})
    assert "initialFill" not in dispense


def swapped(
    client: TestClient, rule: str, quantity: dict[str, Any], fill: dict[str, Any] | None = None
) -> tuple[dict[str, Any], ...]:
    """A 10 mg draft, three a day for a 30-day supply of ``quantity`` (``fill``: its first): the
    dispense of ``rule``'s 5 mg swap, limited to 21 days, and of the duration card's own update,
    which keeps 10 mg."""
    request = fixture(SWAPS[rule])
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 3
    draft["dispenseRequest"] = {"quantity": quantity, "expectedSupplyDuration": MONTH}
    if fill:
        draft["dispenseRequest"]["initialFill"] = fill
    offered = updates(client, request)
    return offered[rule], offered["cyclobenzaprine-duration"]


@pytest.mark.parametrize("rule", SWAPS)
def test_the_swap_of_a_mass_is_capped_at_the_days_it_lasts(client: TestClient, rule: str) -> None:
    """300 mg: 30 tablets of the draft's 10 mg, 10 days at three a day, so 30 of the swap's 5 mg
    (one a dose), where 21 days take 63; 30 of the 10 mg for the duration card's own update.
    Counted as the 60 tablets of 5 mg it makes, the swap doubled the days the draft dispensed (a
    pharmacist's review; ``tests.test_swap_keeps_the_days_dispensed``)."""
    swap, kept = swapped(client, rule, mg(300))
    assert swap["quantity"]["value"] == 30
    assert swap["expectedSupplyDuration"]["value"] == 10
    assert kept["quantity"]["value"] == 30


@pytest.mark.parametrize("rule", SWAPS)
def test_the_swap_of_a_mass_the_course_does_not_reach_is_not_capped(client: TestClient, rule: str) -> None:
    swap, kept = swapped(client, rule, mg(900))
    assert swap["quantity"]["value"] == kept["quantity"]["value"] == 63


@pytest.mark.parametrize("rule", SWAPS)
def test_the_swap_of_a_count_is_capped_at_the_drafts_count(client: TestClient, rule: str) -> None:
    """Unchanged: 30 tablets ordered are 30 at most, of whatever strength (§2)."""
    swap, kept = swapped(client, rule, tablets(30))
    assert swap["quantity"] == kept["quantity"] == tablets(30)


@pytest.mark.parametrize("rule", SWAPS)
def test_the_swaps_first_fill_in_mg_is_read_in_its_5_mg_tablets(client: TestClient, rule: str) -> None:
    """450 mg first: 45 tablets of the draft's 10 mg, 15 days at three a day, so 45 of the swap's
    5 mg, within its 63 for 21 days; 45 of the 10 mg, within the duration card's own 63, kept as
    written. Kept as 450 mg, the swap's first fill had been 90 tablets of 5 mg, 30 days at once;
    read as those 90, it was cut to the course's 63, still 21 days where the draft's was 15."""
    swap, kept = swapped(client, rule, mg(900), {"quantity": mg(450)})
    assert swap["initialFill"] == {"quantity": tablets(45)} and swap["quantity"]["value"] == 63
    assert kept["initialFill"] == {"quantity": mg(450)}
