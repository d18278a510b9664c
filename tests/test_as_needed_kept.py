"""An update leaves the draft's words out (``rules.safe_update``): where only they said the
instruction is taken as needed ("1 tab po tid prn spasm"), the 21-day update sent back a dose to
take every day; reading them as the code instead, "call your doctor as needed" made a scheduled
order as needed (a review of the diff). Words alone say nothing a code can carry: no update is
offered, the card saying why, as for a dose said only in words. Coded, as needed is kept."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.facts.orders import WORDS_ONLY_REASON
from tests.conftest import SELECT, cards_for, fixture


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def duration_card(client: TestClient, changes: dict[str, object]) -> dict[str, Any]:
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0].update(changes)
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-duration")
    return card


@pytest.mark.parametrize(
    "words",
    [
        {"text": "1 tab po tid prn spasm"},
        {"patientInstruction": "Take one tablet as needed for muscle spasm"},
        {"patientInstruction": "Take one tablet three times daily. Call your doctor as needed."},
        {"text": "1 tab tid; do not use prn"},
        {"text": "1 tab tid p.r.n. spasm"},
    ],
    ids=["sig", "patient-instruction", "call-as-needed", "not-prn", "p.r.n."],
)
def test_as_needed_in_words_alone_gets_no_update(client: TestClient, words: dict[str, object]) -> None:
    card = duration_card(client, words)
    assert "suggestions" not in card
    assert WORDS_ONLY_REASON in card["detail"]


def test_as_needed_coded_is_kept_by_the_update(client: TestClient) -> None:
    card = duration_card(client, {"asNeededBoolean": True, "text": "1 tab po tid prn spasm"})
    [[action]] = [s["actions"] for s in card["suggestions"]]
    [dosage] = action["resource"]["dosageInstruction"]
    assert "text" not in dosage and dosage.get("asNeededBoolean") is True
