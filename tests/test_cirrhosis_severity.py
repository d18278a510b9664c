"""Cirrhosis with a recorded severity (``cyclobenzaprine-hepatic-impairment``): moderate or severe
(SNOMED 6736007, 24484000) on the cirrhosis is moderate-to-severe impairment, critical at any dose;
a mild severity is a severity recorded, so the "severity not recorded" card and note do not appear."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture

RULE = "cyclobenzaprine-hepatic-impairment"
SNOMED = "http://snomed.info/sct"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def with_severity(name: str, code: str, display: str) -> dict[str, Any]:
    request = fixture(f"{RULE}/{name}")
    cirrhosis = request["prefetch"]["conditions"]["entry"][0]["resource"]
    cirrhosis["severity"] = {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display}
    return request


def hepatic_cards(client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    return cards_for(client.post(SELECT, json=request).json(), RULE)


@pytest.mark.parametrize(("code", "display"), [("6736007", "Moderate"), ("24484000", "Severe")])
def test_cirrhosis_recorded_moderate_or_severe_is_critical_at_5_mg(client: TestClient, code: str, display: str) -> None:
    request = with_severity("fires-v2-cirrhosis-unrecorded-severity-5mg-info.json", code, display)
    [card] = hepatic_cards(client, request)
    assert card["indicator"] == "critical"
    assert f"recorded as {display.lower()}" in card["detail"]
    assert card["suggestions"][0]["actions"][0]["type"] == "delete"


def test_cirrhosis_recorded_mild_is_not_of_unrecorded_severity(client: TestClient) -> None:
    """At 5 mg mild impairment needs no card; at 10 mg the start-dose card, without the note."""
    assert (
        hepatic_cards(
            client, with_severity("fires-v2-cirrhosis-unrecorded-severity-5mg-info.json", "255604002", "Mild")
        )
        == []
    )
    [card] = hepatic_cards(client, with_severity("fires-warning-snomed-cirrhosis.json", "255604002", "Mild"))
    assert card["indicator"] == "warning"
    assert "not recorded" not in card["detail"]
