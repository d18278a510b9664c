"""A draft is not a drug taken alongside itself (``rules/interactions.py``; clinical specification
§2: "history, or another draft order"): carisoprodol with codeine in one tablet (Soma Compound
with Codeine) is a muscle relaxant whose own opioid is no second drug for the CNS depressant card."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
COMPOUND = "Aspirin 325 MG / Carisoprodol 200 MG / Codeine Phosphate 16 MG Oral Tablet"
GABAPENTIN = "gabapentin 100 MG Oral Capsule"


def compound_ordered(*others: tuple[str, str]) -> dict[str, Any]:
    """The carisoprodol-codeine tablet, the order under review (a patient of 47), and other drafts."""
    request = fixture("muscle-relaxant-duplicate/fires-baclofen-draft.json")
    entries = request["context"]["draftOrders"]["entry"]
    template = entries.pop()["resource"]
    entries[0]["resource"]["medicationCodeableConcept"] = {
        "coding": [{"system": RXNORM, "code": "994226", "display": COMPOUND}],
        "text": COMPOUND,
    }
    for number, (code, display) in enumerate(others, start=1):
        coding = {"system": RXNORM, "code": code, "display": display}
        concept = {"coding": [coding], "text": display}
        entries.append({"resource": {**template, "id": f"other-{number}", "medicationCodeableConcept": concept}})
    return request


def depressant_cards(module_client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    return cards_for(module_client.post(SELECT, json=request).json(), "muscle-relaxant-cns-depressant")


def test_a_relaxant_with_an_opioid_in_the_same_tablet_is_not_taken_alongside_its_opioid(
    module_client: TestClient,
) -> None:
    assert depressant_cards(module_client, compound_ordered()) == []


def test_beside_another_depressant_the_card_names_that_one_only(module_client: TestClient) -> None:
    [card] = depressant_cards(module_client, compound_ordered(("310430", GABAPENTIN)))
    assert card["summary"].endswith("carisoprodol with gabapentin")
    assert "codeine" not in card["detail"]
