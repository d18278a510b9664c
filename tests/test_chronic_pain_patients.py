"""``muscle-relaxant-chronic-pain`` for the patient: an acute flare (muscle spasm, or back pain,
begun in the last 28 days) is a relaxant's indication and silences it, whichever of the two is
recorded, a site's own spasm codes among them; myofascial pain at 65 or older gets the myofascial
card, which names no tricyclic at any age."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, TODAY, cards_for, fixture

RULE = "muscle-relaxant-chronic-pain"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SITE = "urn:oid:1.2.840.114350.1.13.99.2.7.2.696580"
SITE_SPASM = f"""
[condition.muscle-spasm]
codes = [{{ system = "{SITE}", code = "SPASM-7", display = "Muscle spasm, neck", source = "site problem list build" }}]
"""


def with_flare(code: str, system: str, display: str) -> dict[str, Any]:
    """Fibromyalgia since 2022, baclofen ordered, and the fixture's flare of 5 days ago recoded."""
    request = fixture(f"{RULE}/silent-fibromyalgia-with-acute-spasm.json")
    flare = request["prefetch"]["conditions"]["entry"][1]["resource"]
    flare["code"] = {"coding": [{"system": system, "code": code, "display": display}], "text": display}
    return request


def chronic_cards(client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    return cards_for(client.post(SELECT, json=request).json(), RULE)


@pytest.mark.parametrize(
    ("code", "display", "cards"),
    [("M54.50", "Low back pain, unspecified", 0), ("M79.18", "Myalgia, other site", 1)],
)
def test_low_back_pain_begun_5_days_ago_is_an_acute_flare(
    module_client: TestClient, code: str, display: str, cards: int
) -> None:
    """Myalgia of 5 days is no flare of spasm or back pain: the fibromyalgia card stays."""
    assert len(chronic_cards(module_client, with_flare(code, ICD10, display))) == cards


def test_a_sites_own_muscle_spasm_code_is_an_acute_flare(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    request = with_flare("SPASM-7", SITE, "Muscle spasm, neck")
    local = tmp_path / "local-codes.toml"
    local.write_text(SITE_SPASM)
    shipped, site = make_client(), make_client(local_codes_file=local)
    assert len(chronic_cards(shipped, request)) == 1
    assert chronic_cards(site, request) == []


def test_myofascial_pain_at_70_gets_the_myofascial_card(module_client: TestClient) -> None:
    request = fixture(f"{RULE}/fires-myalgia-84-days-v2-12-weeks.json")
    request["prefetch"]["patient"]["birthDate"] = f"{TODAY.year - 70}-01-20"
    [card] = chronic_cards(module_client, request)
    assert card["summary"] == "Muscle relaxants treat acute spasm, not chronic myalgia or myofascial pain"
    assert "trigger point injection" in card["detail"]
    assert "amitriptyline" not in card["detail"] and "tricyclic" not in card["detail"]
