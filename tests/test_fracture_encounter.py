"""A vertebral fracture's ICD-10-CM 7th character (``back-pain-red-flag``, clinical specification
§4): A or B (initial encounter, closed or open) makes it current whatever its onset; another 7th
character (subsequent encounter, sequela) only with an onset in the last 90 days."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture

RULE = "back-pain-red-flag"
WEDGE = "Wedge compression fracture of first lumbar vertebra"


@pytest.mark.parametrize(
    ("code", "encounter", "indicator"),
    [
        ("S32.010B", "initial encounter for open fracture", "warning"),
        ("S32.010G", "subsequent encounter for fracture with delayed healing", None),
        ("S32.010S", "sequela", None),
    ],
)
def test_a_fracture_of_200_days_is_current_by_its_initial_encounter_character(
    module_client: TestClient, code: str, encounter: str, indicator: str | None
) -> None:
    request = fixture(f"{RULE}/fires-fracture-s32-010a-initial-encounter-200-days.json")
    fracture = request["prefetch"]["conditions"]["entry"][0]["resource"]
    display = f"{WEDGE}, {encounter}"
    fracture["code"] = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code, "display": display}]}
    fracture["code"]["text"] = display
    cards = cards_for(module_client.post(SELECT, json=request).json(), RULE)
    assert [card["indicator"] for card in cards] == ([indicator] if indicator else [])
    if cards:
        assert f"({code}) since" in cards[0]["detail"]
