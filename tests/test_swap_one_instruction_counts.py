"""A dose swap of one instruction dispenses its bounds' days at the new dose (clinical
specification §1: the bounds first), within a supply stated, and says that supply: two
tablets three times a day for 5 days, 90 dispensed, became 45 one-tablet doses (15 days' worth
of a 5-day course) where no supply was stated; a quantity with no unit, which the duration reads
as tablets, was left as ordered (126 for 21 days of 1, where 63 are taken); and 15 tablets for a 5-day
course went out as a 30-day supply (an adversarial review and a pharmacist's)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, fixture
from tests.test_swap_counts_a_taper import TAPER, UCUM, dispense, step, swapped_dispense, tablets

TWO_TID = step(3, tablets(2))
FIVE_DAYS_OF_TWO_TID = step(3, tablets(2), days=5)


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def swapped_fill(client: TestClient, dosage: dict[str, Any] | None, fill: dict[str, Any]) -> dict[str, Any]:
    """The dispense request of the 5 mg swap the older-adult card offers for the draft of
    ``dosage`` (None: the fixture's taper) and ``fill``."""
    request = fixture(TAPER)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    if dosage is not None:
        draft["dosageInstruction"] = [copy.deepcopy(dosage)]
    draft["dispenseRequest"] = fill
    return swapped_dispense(answered(client, request))


def test_a_course_shorter_than_its_count_is_dispensed_for_its_days(client: TestClient) -> None:
    assert swapped_fill(client, FIVE_DAYS_OF_TWO_TID, dispense(90))["quantity"]["value"] == 15


def test_a_quantity_with_no_unit_is_recounted_as_tablets(client: TestClient) -> None:
    fill = {"quantity": {"value": 126}, "expectedSupplyDuration": dispense(0, 21)["expectedSupplyDuration"]}
    assert swapped_fill(client, TWO_TID, fill)["quantity"]["value"] == 63


def test_the_supply_is_the_course_it_dispenses_for(client: TestClient) -> None:
    swapped = swapped_fill(client, FIVE_DAYS_OF_TWO_TID, dispense(90, 30))
    assert swapped["quantity"]["value"] == 15
    assert swapped["expectedSupplyDuration"] == {"value": 5, "unit": "days", "system": UCUM, "code": "d"}


def test_a_supply_the_course_fills_is_kept(client: TestClient) -> None:
    """21 days of two three times a day, 126 tablets: 63 of the 5 mg tablet, the 21-day supply as sent."""
    request = dispense(126, 21)
    swapped = swapped_fill(client, TWO_TID, request)
    assert swapped["quantity"]["value"] == 63
    assert swapped["expectedSupplyDuration"] == request["expectedSupplyDuration"]


def test_a_count_short_of_the_course_is_recounted_for_the_course(client: TestClient) -> None:
    """20 tablets for 5 days of two three times a day: 15 one-tablet doses take the course; the
    days the 20 lasted gave 10, out on day 4 (the pharmacist's review)."""
    assert swapped_fill(client, FIVE_DAYS_OF_TWO_TID, dispense(20))["quantity"]["value"] == 15


def test_a_dose_range_is_recounted_for_its_bounds(client: TestClient) -> None:
    """1–2 tablets three times a day for 20 days, 60 tablets: 60 one-tablet doses, where the count
    read at the range's top lasted 10 days and gave 30 (the adversarial review)."""
    dosage = step(3, tablets(2), days=20)
    dosage["doseAndRate"] = [{"doseRange": {"low": tablets(1), "high": tablets(2)}}]
    assert swapped_fill(client, dosage, dispense(60))["quantity"]["value"] == 60


def test_a_taper_is_supplied_for_its_days(client: TestClient) -> None:
    """Two three times a day for 5 days then one a day for 10, with a 30-day supply: 25 tablets,
    for 15 days (the pharmacist's review)."""
    swapped = swapped_fill(client, None, dispense(40, 30))
    assert swapped["quantity"]["value"] == 25
    assert swapped["expectedSupplyDuration"] == {"value": 15, "unit": "days", "system": UCUM, "code": "d"}


def test_a_taper_with_a_step_of_no_stated_length_keeps_its_supply(client: TestClient) -> None:
    """Its bounds say 5 days of 15, and 30 tablets are counted for the 20-day supply: the supply
    stays what they are counted for (the adversarial review of the taper's supply). A step with no
    end leaves the course to the supply (a 30-day one: over the limit, the swap limited too)."""
    request = fixture(TAPER)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    del draft["dosageInstruction"][1]["timing"]["repeat"]
    draft["dispenseRequest"] = dispense(60, 20)
    swapped = swapped_dispense(answered(client, request))
    assert swapped["quantity"]["value"] == 30
    assert swapped["expectedSupplyDuration"] == dispense(60, 20)["expectedSupplyDuration"]
