"""Requests shaped like Epic's and Oracle Health's, end to end over HTTP (fixtures/ehr/)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import NOON, Clock, fixture, hook_url, rule_ids
from tests.fhir_server import FhirTestServer
from tests.tokens import SigningKey, claims, jwks

EPIC = "https://fhir.epic.example.org/api/FHIR/R4"
PATIENT = "eXm2Tq8Yw1Lc3"


def _on(server: FhirTestServer, request: dict[str, Any]) -> dict[str, Any]:
    """The request pointed at the local FHIR server (its next links too)."""
    return json.loads(json.dumps(request).replace(EPIC, server.base))


def _epic_server(server: FhirTestServer) -> None:
    server.page_size = 1
    server.add(
        {
            "resourceType": "Condition",
            "id": "spasm",
            "subject": {"reference": f"Patient/{PATIENT}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M62.830"}]},
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "onsetDateTime": "2026-11-10",
        },
        fixture("ehr/epic-order-sign.json")["prefetch"]["medications"]["entry"][0]["resource"],
        {
            "resourceType": "MedicationRequest",
            "id": "eRx-ssri",
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{PATIENT}"},
            "authoredOn": "2026-10-01",
            "medicationCodeableConcept": {
                "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "312938"}]
            },
            "dosageInstruction": [
                {"timing": {"code": {"text": "QD"}}, "doseAndRate": [{"doseQuantity": {"value": 100, "unit": "mg"}}]}
            ],
            "dispenseRequest": {"expectedSupplyDuration": {"value": 90, "unit": "d"}},
        },
    )


def test_epic_order_sign(ehr: Callable[[dict[str, Any]], Any], fhir_server: FhirTestServer) -> None:
    """Contained Medication, dose in mg with a TID timing code, an OperationOutcome key, a paged Bundle."""
    _epic_server(fhir_server)
    response = ehr(_on(fhir_server, fixture("ehr/epic-order-sign.json")))
    assert response.status_code == 200, response.text
    found = response.json()["cards"]
    assert rule_ids({"cards": found}) == [
        "cyclobenzaprine-older-adult",
        "cyclobenzaprine-serotonergic",
        "cyclobenzaprine-duration",
        "muscle-relaxant-duplicate",
    ]
    # 90 tablets at 3 a day is 30 days, twice with the refill, plus 8 days of the course in hand.
    assert found[2]["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 8 taken + 60 planned"
    assert "sertraline" in found[1]["summary"].lower() or "sertraline" in found[1]["detail"].lower()
    # The failed Condition search is redone and page 2 of the prefetched medications is fetched,
    # both with the EHR's access token.
    assert sorted(s.path for s in fhir_server.seen) == [
        f"/fhir/Condition?patient={PATIENT}",
        f"/fhir/MedicationRequest?patient={PATIENT}&_page=1",
        "/fhir/metadata",  # the server's FHIR version, read before the first search
    ]
    assert {s.headers["authorization"] for s in fhir_server.seen} == {"Bearer epic-access-token-not-a-real-one"}
    # The older-adult card offers the 5 mg tablet or removal (v2), at most one.
    actions = [a for s in found[0]["suggestions"] for a in s["actions"]]
    assert [a["type"] for a in actions] == ["update", "delete"]
    update = actions[0]
    assert update["resource"]["id"] == "eRx-20261121-1"
    assert update["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == "828320"  # the 5 mg tablet


def test_oracle_order_select(ehr: Callable[[dict[str, Any]], Any]) -> None:
    """Doses in tablets with a BID code, extra codings, imaging null: answered from the prefetch alone."""
    response = ehr(fixture("ehr/oracle-order-select.json"))
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    assert card["indicator"] == "critical"
    assert card["source"]["topic"]["code"] == "cyclobenzaprine-hepatic-impairment"
    [delete] = [a for s in card["suggestions"] for a in s["actions"]]
    assert delete["type"] == "delete"
    assert delete["resourceId"] == "MedicationRequest/313757847"


@pytest.fixture
def ehr(
    make_client: Callable[..., TestClient], tmp_path: Path, fhir_server: FhirTestServer
) -> Callable[[dict[str, Any]], Any]:
    """A service trusting an EHR issuer the way Epic and Oracle Health sign: RS384, with sub and nbf."""
    key = SigningKey.generate("RS384")
    trusted = tmp_path / "trusted.json"
    trusted.write_text(json.dumps([{"iss": "epic-client-id", "jwks": jwks(key), "fhir_servers": [fhir_server.base]}]))
    clock = Clock(NOON)
    client = make_client(auth_mode="required", trusted_clients_file=trusted, clock=clock)

    def send(request: dict[str, Any]) -> Any:
        now = clock.now
        path = hook_url(request)
        token = key.sign(
            claims("http://testserver" + path, now, iss="epic-client-id", sub="epic-client-id", nbf=int(now))
        )
        return client.post(path, json=request, headers={"Authorization": f"Bearer {token}"})

    return send
