"""The dose a card says is "up to" the highest where the order allows several (1–2 tablets, a
taper's steps): "20 mg per dose" of 1–2 10 mg tablets told a pharmacist more than the order did."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def tablets(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "tablet", "system": "http://unitsofmeasure.org", "code": "{tablet}"}


def summary(client: TestClient, dose_and_rate: list[dict[str, Any]]) -> str:
    """The older-adult card's summary for 10 mg tablets once a day, dosed so."""
    request = fixture("cyclobenzaprine-older-adult/fires-age-65-10mg.json")
    request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["doseAndRate"] = dose_and_rate
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-older-adult")
    return str(card["summary"])


@pytest.mark.parametrize(
    ("dose_and_rate", "said"),
    [
        ([{"doseRange": {"low": tablets(1), "high": tablets(2)}}], "(up to 20 mg per dose ordered)"),
        ([{"doseRange": {"high": tablets(2)}}], "(up to 20 mg per dose ordered)"),
        ([{"doseRange": {"low": tablets(2), "high": tablets(2)}}], "(20 mg per dose ordered)"),
        ([{"doseQuantity": tablets(2)}], "(20 mg per dose ordered)"),
    ],
    ids=["range", "up-to", "range-of-one-dose", "one-dose"],
)
def test_a_dose_range_is_said_up_to_its_highest(
    client: TestClient, dose_and_rate: list[dict[str, Any]], said: str
) -> None:
    assert summary(client, dose_and_rate).endswith(f"start at 5 mg {said}")
