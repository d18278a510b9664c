"""Cards that hold back where an order may be right: ``nonpharmacologic-first-line`` says "no
physical therapy is ordered" only when the patient's ServiceRequests could be read, and
``low-value-back-therapy`` stays silent after a spinal fusion (a brace may be the treatment),
which a site's own codes name (the shipped ``spinal-fusion`` concept has none: docs/configuration.md)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
FUSION = """
[condition.spinal-fusion]
codes = [{ system = "http://hl7.org/fhir/sid/icd-10-cm", code = "Z98.1", display = "Arthrodesis status", source = "site problem list build" }]
"""


@pytest.mark.parametrize(
    ("imaging_read", "said"),
    [
        (True, "No current physical therapy order was found for this patient."),
        (False, "Whether physical therapy is ordered could not be checked: the service orders were not available."),
    ],
)
def test_the_heat_and_exercise_card_says_when_the_therapy_orders_could_not_be_read(
    module_client: TestClient, imaging_read: bool, said: str
) -> None:
    """No fhirServer to fetch from: without the ``imaging`` key, physical therapy may be ordered.
    The card went quiet, with no word on the screen (QA round 2); it now says it could not tell."""
    request = fixture("nonpharmacologic-first-line/fires-back-pain-on-problem-list.json")
    del request["fhirServer"]
    if not imaging_read:
        del request["prefetch"]["imaging"]
    response = module_client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    [card] = cards_for(response.json(), "nonpharmacologic-first-line")
    assert card["detail"].endswith(said)


def test_a_tens_order_after_a_spinal_fusion_gets_no_low_value_card(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    """The same TENS order for low back pain, with an arthrodesis on the problem list: a card
    where no code names a fusion, none where the site's codes do."""
    request = fixture("low-value-back-therapy/fires-tens-device.json")
    conditions = request["prefetch"]["conditions"]
    fusion: dict[str, Any] = copy.deepcopy(conditions["entry"][0]["resource"])
    fusion.update(id="fusion-1", onsetDateTime="2024-05-02")
    fusion["code"] = {"coding": [{"system": ICD10, "code": "Z98.1", "display": "Arthrodesis status"}]}
    conditions["entry"].append({"resource": fusion})
    conditions["total"] = 2
    local = tmp_path / "local-codes.toml"
    local.write_text(FUSION)
    shipped, site = make_client(), make_client(local_codes_file=local)
    assert len(cards_for(shipped.post(SELECT, json=request).json(), "low-value-back-therapy")) == 1
    assert cards_for(site.post(SELECT, json=request).json(), "low-value-back-therapy") == []
