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


TID = {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}
ONE = [{"doseQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "{tbl}"}}]


def start_dose(client: TestClient, name: str, dosages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The older-adult card's dose change of the fixture's draft with these instructions: its
    label, and the instructions it writes."""
    request = fixture(name)
    request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"] = dosages
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-older-adult")
    [suggestion] = [s for s in card["suggestions"] if s["actions"][0]["type"] == "update"]
    return str(suggestion["label"]), suggestion["actions"][0]["resource"]["dosageInstruction"]


@pytest.mark.parametrize(
    ("dosage", "said"),
    [
        ({"timing": TID, "asNeededBoolean": True}, "1 tablet three times a day as needed"),
        ({"timing": TID, "asNeededCodeableConcept": {"text": "muscle spasm"}}, "1 tablet three times a day as needed"),
        ({"timing": {"code": {"text": "TID PRN"}}}, "1 tablet three times a day as needed"),
        # Four a day, rewritten to three: its code, which said as needed, goes.
        ({"timing": {"code": {"text": "q6h as needed"}}}, "1 tablet three times a day as needed"),
    ],
    ids=["boolean", "reason", "timing-words", "timing-words-capped"],
)
def test_the_swap_says_as_needed_and_keeps_it(client: TestClient, dosage: dict[str, Any], said: str) -> None:
    """ "1 tablet three times a day" for an order of up to three times a day as needed: the label
    said a dose every day, and where its timing code's words alone said so, the update (which
    rewrites the code) wrote one."""
    label, written = start_dose(
        client, "cyclobenzaprine-older-adult/fires-age-65-10mg.json", [{**dosage, "doseAndRate": ONE}]
    )
    assert label == f"Change to cyclobenzaprine 5 mg tablet, {said} (limited to 21 days)"
    assert [d.get("asNeededBoolean", "asNeededCodeableConcept" in d) for d in written] == [True]


def test_the_swap_says_which_doses_are_as_needed(client: TestClient) -> None:
    """One at bedtime every day and one twice a day as needed, taken together (one sequence)."""
    dosages = [
        {"sequence": 1, "timing": {"repeat": {"when": ["HS"]}}, "doseAndRate": ONE},
        {"sequence": 1, "timing": {"code": {"text": "BID PRN"}}, "doseAndRate": ONE},
    ]
    label, written = start_dose(client, "cyclobenzaprine-older-adult/fires-age-65-10mg.json", dosages)
    assert (
        label
        == "Change to cyclobenzaprine 5 mg tablet, 1 tablet three times a day, some doses as needed (limited to 21 days)"
    )
    assert [d.get("asNeededBoolean") for d in written] == [None, True]


def test_the_sublingual_dose_says_as_needed(client: TestClient) -> None:
    two = [{"doseQuantity": {**ONE[0]["doseQuantity"], "value": 2}}]
    dosages = [{"timing": {"code": {"text": "nightly prn"}}, "doseAndRate": two}]
    label, written = start_dose(client, "cyclobenzaprine-older-adult/fires-sublingual-5.6mg-age-70.json", dosages)
    assert label == "Change to 1 sublingual 2.8 mg tablet once a day at bedtime as needed"
    assert [d.get("asNeededBoolean") for d in written] == [True]
