"""The start-dose swap says how often as the order gives it: every 8 hours is not "three times a
day" to a pharmacist (doses round the clock, not in waking hours), so a timing given as a period
in hours, and kept by the swap, is said as one; a rate a day, or one the swap rewrites to its cap
of three a day, is said in times a day."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture

GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def swap_label(client: TestClient, timing: dict[str, Any]) -> str:
    """The older-adult card's dose change for a 10 mg order of this timing."""
    request = fixture("cyclobenzaprine-older-adult/fires-age-65-10mg.json")
    request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["timing"] = timing
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-older-adult")
    return str(card["suggestions"][0]["label"])


def code(value: str) -> dict[str, Any]:
    return {"code": {"coding": [{"system": GTS, "code": value}]}}


def every(hours: int, frequency: int = 1) -> dict[str, Any]:
    return {"repeat": {"frequency": frequency, "period": hours, "periodUnit": "h"}}


@pytest.mark.parametrize(
    ("timing", "said"),
    [
        (every(8), "1 tablet every 8 hours"),
        (code("Q8H"), "1 tablet every 8 hours"),
        ({"code": {"text": "q 8 hr"}}, "1 tablet every 8 hours"),
        (every(12), "1 tablet every 12 hours"),
        (code("TID"), "1 tablet three times a day"),
        ({"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}, "1 tablet three times a day"),
        ({"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}, "1 tablet twice a day"),
        (every(6), "1 tablet three times a day"),  # four a day: rewritten to the cap, three a day
        (code("Q6H"), "1 tablet three times a day"),
        (every(16, frequency=2), "1 tablet three times a day"),  # not once every so many hours
        # Kept as written, a range: it was "three times a day".
        ({"repeat": {"frequency": 1, "period": 8, "periodMax": 12, "periodUnit": "h"}}, "1 tablet every 8 to 12 hours"),
        ({"repeat": {"frequency": 1, "period": 8, "periodMax": 8, "periodUnit": "h"}}, "1 tablet every 8 hours"),
        ({"repeat": {"frequency": 1, "period": 4, "periodMax": 6, "periodUnit": "h"}}, "1 tablet three times a day"),
    ],
)
def test_how_often_the_swap_says(client: TestClient, timing: dict[str, Any], said: str) -> None:
    assert swap_label(client, timing) == f"Change to cyclobenzaprine 5 mg tablet, {said} (limited to 21 days)"
