"""A draft dispensed as a mass of a drug whose strength is known (300 mg of the 10 mg tablet) is
planned for the days its tablets last: §1's "quantity ÷ units per day × (1 + repeats)" divides the
30 tablets that make it. Read as no count, a 10-day order was of unknown length, and the card's
update wrote 21 days with 30 tablets (a clinical review); 210 mg with 3 refills, 28 days, had no
warning. With the strength unknown, the course stays unknown."""

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


def duration_cards(client: TestClient, quantity: dict[str, Any], refills: int = 0, name: str = "") -> list[Any]:
    """The duration cards for one tablet three times a day, ``quantity`` dispensed with ``refills``
    and no supply (``name``: the drug named in words alone, its strength unknown)."""
    request = fixture(DRAFT)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 3
    draft["dispenseRequest"] = {"quantity": quantity, "numberOfRepeatsAllowed": refills}
    if name:
        draft["medicationCodeableConcept"] = {"text": name}
    return cards_for(answered(client, request), "cyclobenzaprine-duration")


def mass(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def test_300_mg_of_the_10_mg_tablet_three_a_day_is_a_10_day_course(client: TestClient) -> None:
    assert duration_cards(client, mass(300, "mg")) == []


@pytest.mark.parametrize(("quantity", "refills", "days"), [(mass(210, "mg"), 3, 28), (mass(0.9, "g"), 0, 30)])
def test_a_mass_lasting_past_the_limit_is_limited_in_its_tablets(
    client: TestClient, quantity: dict[str, Any], refills: int, days: int
) -> None:
    """210 mg with 3 refills (21 tablets, four fills: 28 days) and 0.9 g (90 tablets: 30 days)."""
    (card,) = duration_cards(client, quantity, refills)
    assert card["indicator"] == "warning"
    assert f"{days} days planned" in card["summary"]
    dispense = card["suggestions"][0]["actions"][0]["resource"]["dispenseRequest"]
    fill = dispense["quantity"]["value"]
    assert fill * (1 + dispense["numberOfRepeatsAllowed"]) == 63
    assert fill <= quantity["value"] * (1000 if quantity["code"] == "g" else 1) / 10


def test_a_mass_of_a_drug_of_unknown_strength_leaves_the_course_unknown(client: TestClient) -> None:
    (card,) = duration_cards(client, mass(300, "mg"), name="cyclobenzaprine oral tablet")
    assert card["indicator"] == "info"
    assert "Specify a cyclobenzaprine duration" in card["summary"]
