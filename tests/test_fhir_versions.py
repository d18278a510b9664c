"""DSTU2 and STU3 clients: the same facts, the same cards, suggestions in the client's own version."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class as r4b_model
from fhir.resources.STU3 import get_fhir_model_class as stu3_model

from tests.conftest import SELECT, SIGN, fixture, rule_ids

VERSIONS = ("r4", "stu3", "dstu2")
ORDER = "fhir-versions/{}-cyclobenzaprine-10mg-tid-30-days.json"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def cards(client: TestClient, version: str, path: str = SELECT, request: dict[str, Any] | None = None) -> list[dict]:
    response = client.post(path, json=request or fixture(ORDER.format(version)))
    assert response.status_code == 200, response.text
    return response.json()["cards"]


def comparable(card: dict[str, Any]) -> dict[str, Any]:
    """A card without what differs by design: fresh uuids, and resources in the client's version."""
    card = copy.deepcopy(card)
    card.pop("uuid")
    for suggestion in card.get("suggestions", []):
        suggestion.pop("uuid")
        for action in suggestion["actions"]:
            action.pop("resource", None)
            action.pop("resourceId", None)
    return card


def test_the_same_order_in_dstu2_stu3_and_r4_gets_the_same_cards(client: TestClient) -> None:
    by_version = {version: cards(client, version) for version in VERSIONS}
    assert rule_ids({"cards": by_version["r4"]}) == [
        "cyclobenzaprine-hepatic-impairment",
        "cyclobenzaprine-older-adult",
        "cyclobenzaprine-serotonergic",
        "cyclobenzaprine-duration",
        "muscle-relaxant-duplicate",
        "nonpharmacologic-first-line",
    ]
    r4 = [comparable(card) for card in by_version["r4"]]
    assert [comparable(card) for card in by_version["stu3"]] == r4
    assert [comparable(card) for card in by_version["dstu2"]] == r4


def _actions(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for card in found for s in card.get("suggestions", []) for a in s["actions"]]


def test_dstu2_suggestions_are_medication_orders(client: TestClient) -> None:
    actions = _actions(cards(client, "dstu2"))
    updates = [a["resource"] for a in actions if a["type"] == "update"]
    assert updates and all(r["resourceType"] == "MedicationOrder" and r["id"] == "order-123" for r in updates)
    for resource in updates:
        dosage = resource["dosageInstruction"][0]
        assert "doseAndRate" not in dosage and "doseQuantity" in dosage
        assert "periodUnit" not in dosage["timing"]["repeat"]
        assert resource["dateWritten"] == "2026-11-21"  # the client's own fields, kept
    limited = next(r for r in updates if "boundsQuantity" in r["dosageInstruction"][0]["timing"]["repeat"])
    assert limited["dosageInstruction"][0]["timing"]["repeat"]["boundsQuantity"]["value"] == 10
    assert limited["dispenseRequest"]["expectedSupplyDuration"]["value"] == 10
    # The duplicate card's delete and the older-adult card's removal choice (v2), both by the
    # DSTU2 reference.
    deletes = [a["resourceId"] for a in actions if a["type"] == "delete"]
    assert deletes == ["MedicationOrder/order-123"] * 2


def test_stu3_suggestions_are_valid_stu3(client: TestClient) -> None:
    updates = [a["resource"] for a in _actions(cards(client, "stu3")) if a["type"] == "update"]
    assert updates
    for resource in updates:
        stu3_model("MedicationRequest").model_validate(resource)
        assert "doseQuantity" in resource["dosageInstruction"][0]


def test_r4_suggestions_are_valid_r4(client: TestClient) -> None:
    updates = [a["resource"] for a in _actions(cards(client, "r4")) if a["type"] == "update"]
    assert updates
    for resource in updates:
        r4b_model("MedicationRequest").model_validate(resource)


def test_order_sign_reads_dstu2_drafts(make_client: Callable[..., TestClient]) -> None:
    """An app of its own: order-sign does not repeat what order-select (this module's other
    tests) showed for this draft today."""
    client = make_client()
    request = fixture(ORDER.format("dstu2"))
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    assert "cyclobenzaprine-duration" in rule_ids({"cards": cards(client, "dstu2", SIGN, request)})


@pytest.mark.parametrize("version", ["stu3", "dstu2"])
@pytest.mark.parametrize(
    ("status", "fires"), [("active", True), ("relapse", True), ("resolved", False), ("remission", False)]
)
def test_older_condition_status_codes(client: TestClient, version: str, status: str, fires: bool) -> None:
    request = fixture(ORDER.format(version))
    request["prefetch"]["conditions"]["entry"][0]["resource"]["clinicalStatus"] = status
    found = rule_ids({"cards": cards(client, version, request=request)})
    assert ("cyclobenzaprine-hepatic-impairment" in found) is fires


@pytest.mark.parametrize("version", ["stu3", "dstu2"])
def test_refuted_older_condition_is_ignored(client: TestClient, version: str) -> None:
    request = fixture(ORDER.format(version))
    request["prefetch"]["conditions"]["entry"][0]["resource"]["verificationStatus"] = "refuted"
    assert "cyclobenzaprine-hepatic-impairment" not in rule_ids({"cards": cards(client, version, request=request)})


def test_dstu2_hepatic_failure_is_critical_with_delete(client: TestClient) -> None:
    request = fixture(ORDER.format("dstu2"))
    condition = request["prefetch"]["conditions"]["entry"][0]["resource"]
    condition["code"] = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "K72.10"}]}
    [card] = [c for c in cards(client, "dstu2", request=request) if c["indicator"] == "critical"]
    assert card["source"]["topic"]["code"] == "cyclobenzaprine-hepatic-impairment"
    assert _actions([card])[0] == {
        "type": "delete",
        "resourceId": "MedicationOrder/order-123",
        "description": _actions([card])[0]["description"],
    }


def test_the_sandbox_dstu2_draft_as_it_sends_it(client: TestClient) -> None:
    """The sandbox's DSTU2 Rx View: MedicationOrder order-123, `{pill}` doses, `periodUnits`, one object for category."""
    request = fixture(ORDER.format("dstu2"))
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["category"] = {"coding": [{"code": "community"}]}
    draft["dosageInstruction"][0]["doseQuantity"] = {
        "value": 1,
        "system": "http://unitsofmeasure.org",
        "code": "{pill}",
    }
    draft["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = 1
    del draft["reasonCodeableConcept"]
    request["prefetch"] = {"patient": request["prefetch"]["patient"], "conditions": None, "medications": None}
    found = cards(client, "dstu2", request=request)
    assert "cyclobenzaprine-duration" in rule_ids({"cards": found})
    assert "30 days planned" in next(
        c["summary"] for c in found if c["source"]["topic"]["code"] == "cyclobenzaprine-duration"
    )


@pytest.mark.parametrize("status", ["stopped", "Stopped"])
@pytest.mark.parametrize(("ended", "indicator"), [("2026-11-16", "critical"), ("2026-11-01", None)])
def test_a_dstu2_medication_order_ended_on_its_date_ended(
    client: TestClient, ended: str, indicator: str | None, status: str
) -> None:
    """DSTU2 records when a MedicationOrder was stopped (``dateEnded``; R4 has no such field): a
    phenelzine order stopped 5 days ago is inside the 14-day washout, critical, and one stopped 20
    days ago is past it. Read as R4 without it, the stop date was "unknown": a warning either way."""
    request = fixture(ORDER.format("dstu2"))
    phenelzine = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "312347"}
    maoi = {
        "resourceType": "MedicationOrder",
        "id": "maoi-1",
        "status": status,
        "patient": {"reference": "Patient/versions-pt"},
        "dateWritten": "2026-08-01",
        "dateEnded": ended,
        "medicationCodeableConcept": {"coding": [phenelzine], "text": "Phenelzine 15 MG Oral Tablet"},
    }
    request["prefetch"]["medications"]["entry"].append({"resource": maoi})
    found = [
        c["indicator"]
        for c in cards(client, "dstu2", request=request)
        if c["source"]["topic"]["code"] == "cyclobenzaprine-maoi"
    ]
    assert found == ([indicator] if indicator else [])


@pytest.mark.parametrize(("version", "when"), [("r4", ["HS"]), ("stu3", ["HS"]), ("dstu2", "HS")])
def test_the_sublingual_swap_is_once_a_day_at_bedtime_in_each_version(
    client: TestClient, version: str, when: object
) -> None:
    """The sublingual label's dose is one 2.8 mg tablet once daily at bedtime; the swap said
    "once a day" and left the time of day to the draft's words, which an update now leaves out.
    DSTU2's ``Timing.repeat.when`` is one code, STU3's and R4's a list."""
    request = fixture(ORDER.format(version))
    [draft] = [e["resource"] for e in request["context"]["draftOrders"]["entry"]]
    draft["medicationCodeableConcept"] = {"text": "Tonmya (cyclobenzaprine HCl) 2.8 mg sublingual tablet"}
    [dosage] = draft["dosageInstruction"]
    dosage["timing"]["repeat"]["frequency"] = 1
    mg = {"value": 5.6, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    if "doseAndRate" in dosage:
        dosage["doseAndRate"] = [{"doseQuantity": mg}]
    else:
        dosage["doseQuantity"] = mg
    [card] = [
        c
        for c in cards(client, version, request=request)
        if c["source"]["topic"]["code"] == "cyclobenzaprine-older-adult"
    ]
    [swap] = [s for s in card["suggestions"] if s["label"].endswith("once a day at bedtime")]
    [timing] = [d["timing"]["repeat"] for d in swap["actions"][0]["resource"]["dosageInstruction"]]
    assert timing["when"] == when and timing["frequency"] == 1 and timing["period"] == 1
