"""An update leaves the draft's words out (``rules.safe_update``): where only they said the
instruction is taken as needed ("1 tab po tid prn spasm"), the 21-day update sent back a dose
to take every day. It keeps it as needed in its code instead."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


@pytest.mark.parametrize(
    "words",
    [
        {"text": "1 tab po tid prn spasm"},
        {"patientInstruction": "Take one tablet as needed for muscle spasm"},
    ],
    ids=["sig", "patient-instruction"],
)
def test_the_21_day_update_keeps_as_needed_what_the_words_said(client: TestClient, words: dict[str, object]) -> None:
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0].update(words)
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-duration")
    [[action]] = [s["actions"] for s in card["suggestions"]]
    [dosage] = action["resource"]["dosageInstruction"]
    assert action["type"] == "update"
    assert "text" not in dosage and "patientInstruction" not in dosage
    assert dosage.get("asNeededBoolean") is True
