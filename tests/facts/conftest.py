"""The facts of clinical specification §1, pinned through HTTP at each boundary.

Each test posts a crafted order-select request (the sandbox's cyclobenzaprine 10 mg order for a
47-year-old, today 2026-11-21) and reads the computed fact off the card a rule makes of it: the
duration card's "N days planned" / "N taken + M planned", the MAOI card's washout, the
contraindication card for an active condition, the refractory card's "N weeks" of symptoms.

The request builders and readers this package's modules share.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture

BASE = "cyclobenzaprine-duration/silent-21-days.json"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CYCLOBENZAPRINE_10 = (RXNORM, "828348", "Cyclobenzaprine hydrochloride 10 MG Oral Tablet")
PHENELZINE_15 = (RXNORM, "312347", "Phenelzine 15 MG Oral Tablet")
HYPERTHYROIDISM = (ICD10CM, "E05.90", "Thyrotoxicosis, unspecified without thyrotoxic crisis or storm")
MI = (SNOMED, "22298006", "Myocardial infarction (disorder)")
LOW_BACK_PAIN = (ICD10CM, "M54.50", "Low back pain, unspecified")
SCIATICA = (ICD10CM, "M54.31", "Sciatica, right side")


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def days(value: float, unit: str = "d") -> dict[str, Any]:
    return {"value": value, "system": "http://unitsofmeasure.org", "code": unit}


def step(
    per_day: int = 1,
    *,
    units: float | None = 1,
    unit: str = "{tbl}",
    bounds: tuple[str, str | None] | None = None,
    duration: dict[str, Any] | None = None,
    sequence: int | None = None,
) -> dict[str, Any]:
    """One dosage instruction: ``units`` of ``unit`` ``per_day`` times a day (no dose when None)."""
    repeat: dict[str, Any] = {"frequency": per_day, "period": 1, "periodUnit": "d"}
    if bounds:
        repeat["boundsPeriod"] = {"start": bounds[0], **({"end": bounds[1]} if bounds[1] else {})}
    if duration:
        repeat["boundsDuration"] = duration
    dosage: dict[str, Any] = {"timing": {"repeat": repeat}}
    if units is not None:
        quantity = {"value": units, "system": "http://unitsofmeasure.org", "code": unit}
        dosage["doseAndRate"] = [{"doseQuantity": quantity}]
    if sequence is not None:
        dosage["sequence"] = sequence
    return dosage


def quantity(value: float) -> dict[str, Any]:
    return {"quantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "{tbl}"}}


def concept(code: tuple[str, str, str], text: str | None = None) -> dict[str, Any]:
    system, value, display = code
    return {"coding": [{"system": system, "code": value, "display": display}], "text": text or display}


def course(
    id: str,
    drug: tuple[str, str, str] = CYCLOBENZAPRINE_10,
    *,
    status: str = "completed",
    authored: str | None = None,
    dosage: list[dict[str, Any]] | None = None,
    dispense: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A MedicationRequest of the patient's history."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": id,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/harness-pt-1"},
        "medicationCodeableConcept": concept(drug),
        "dosageInstruction": dosage or [step()],
    }
    if authored:
        resource["authoredOn"] = authored
    if dispense:
        resource["dispenseRequest"] = dispense
    return resource


def condition(
    id: str,
    *codes: tuple[str, str, str],
    text: str | None = None,
    onset: str | None = None,
    recorded: str | None = None,
    clinical: str | None = "active",
    verification: str | None = None,
    abated: str | None = None,
) -> dict[str, Any]:
    """A Condition of the problem list; ``clinical``/``verification`` None leave the status out."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": id,
        "subject": {"reference": "Patient/harness-pt-1"},
        "code": {
            "coding": [{"system": s, "code": c, "display": d} for s, c, d in codes],
            "text": text or codes[0][2],
        },
    }
    system = "http://terminology.hl7.org/CodeSystem/condition-"
    if clinical:
        resource["clinicalStatus"] = {"coding": [{"system": system + "clinical", "code": clinical}]}
    if verification:
        resource["verificationStatus"] = {"coding": [{"system": system + "ver-status", "code": verification}]}
    for name, value in (("onsetDateTime", onset), ("recordedDate", recorded), ("abatementDateTime", abated)):
        if value:
            resource[name] = value
    return resource


def hook(
    *,
    dosage: list[dict[str, Any]] | None = None,
    dispense: dict[str, Any] | None = None,
    history: tuple[dict[str, Any], ...] = (),
    conditions: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """The base request with the draft's sig (``dispense`` {} drops the supply) and the history."""
    request = fixture(BASE)
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    if dosage is not None:
        order["dosageInstruction"] = dosage
    if dispense is not None:
        order["dispenseRequest"] = dispense
    for key, resources in (("medications", history), ("conditions", conditions)):
        request["prefetch"][key]["entry"] = [{"resource": r} for r in resources]
        request["prefetch"][key]["total"] = len(resources)
    return request


def post(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return response.json()


def duration_card(client: TestClient, request: dict[str, Any]) -> dict[str, Any] | None:
    cards = cards_for(post(client, request), "cyclobenzaprine-duration")
    return cards[0] if cards else None


def planned(client: TestClient, request: dict[str, Any]) -> str | None:
    """The duration card's days, "22 days planned" or "10 taken + 12 planned"; None without a card."""
    card = duration_card(client, request)
    if card is None:
        return None
    found = re.search(r"(\d+(?:\.\d+)? taken \+ \d+(?:\.\d+)? planned|\d+(?:\.\d+)? days planned)", card["summary"])
    assert found, card["summary"]
    return found.group(1)
