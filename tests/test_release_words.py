"""What an order's words say of its release, beside codes that do not (the reviews of the
forty-second pass): "24 hr" beside a dose form is the extended-release capsule, a dosing
interval is not; "SL" after any run of separators goes from an update's name."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OLDER_ADULT = "cyclobenzaprine-older-adult/fires-age-70-component-alone-extended-release-in-its-words.json"
COMPONENT_15_MG = {"system": RXNORM, "code": "828341", "display": "Cyclobenzaprine hydrochloride 15 MG"}
COMPONENT_10_MG = {"system": RXNORM, "code": "828347", "display": "Cyclobenzaprine hydrochloride 10 MG"}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def named(coding: dict[str, Any], text: str) -> dict[str, Any]:
    request = fixture(OLDER_ADULT)
    request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {
        "coding": [coding],
        "text": text,
    }
    return request


def older_adult_summary(client: TestClient, request: dict[str, Any]) -> str:
    [card] = cards_for(answered(client, request), "cyclobenzaprine-older-adult")
    return str(card["summary"])


@pytest.mark.parametrize("text", ["cyclobenzaprine 15 mg 24 hr capsule", "cyclobenzaprine 15 mg cap 24 hr"])
def test_24_hr_beside_a_dose_form_is_extended_release(client: TestClient, text: str) -> None:
    summary = older_adult_summary(client, named(COMPONENT_15_MG, text))
    assert summary.startswith("Avoid extended-release cyclobenzaprine"), summary


@pytest.mark.parametrize(
    "text", ["cyclobenzaprine 10 mg tablet (max 3 per 24 hr)", "cyclobenzaprine 10 mg q 24 hr tablets"]
)
def test_a_dosing_interval_is_no_release(client: TestClient, text: str) -> None:
    summary = older_adult_summary(client, named(COMPONENT_10_MG, text))
    assert summary.startswith("Avoid cyclobenzaprine in older adults"), summary


@pytest.mark.parametrize("text", ["cyclobenzaprine 10 mg tablet, , SL", "cyclobenzaprine 10 mg tablet;; SL"])
def test_sl_after_a_run_of_separators_goes_from_the_update(client: TestClient, text: str) -> None:
    request = named(COMPONENT_10_MG, text)
    updates = [
        action["resource"]["medicationCodeableConcept"]["text"]
        for card in cards_for(answered(client, request), "cyclobenzaprine-duration")
        for suggestion in card.get("suggestions", ())
        for action in suggestion["actions"]
        if action["type"] == "update"
    ]
    assert updates == ["cyclobenzaprine 10 mg tablet"]
