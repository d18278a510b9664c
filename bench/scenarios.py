"""The requests the benchmark sends: the sandbox's order, prefetch of 50 and 500 entries, a
request the service must complete from a FHIR server, and a patient who triggers six rules."""

from __future__ import annotations

import copy
import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from tools.fixture_day import TODAY

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SELECT = "back-spasm-order-select"
FETCHED = "prefetch missing, fetched from FHIR"

# A realistic mix for one patient's history, drawn from codes the service knows and does not.
CONDITIONS = [
    ("http://hl7.org/fhir/sid/icd-10-cm", "M62.830", "Muscle spasm of back"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "M54.50", "Low back pain, unspecified"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "I10", "Essential (primary) hypertension"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "E11.9", "Type 2 diabetes mellitus without complications"),
    ("http://snomed.info/sct", "279039007", "Low back pain"),
    ("http://snomed.info/sct", "38341003", "Hypertensive disorder"),
    ("http://snomed.info/sct", "195967001", "Asthma"),
]
MEDICATIONS = [
    ("197361", "amlodipine 5 MG Oral Tablet"),
    ("860975", "metformin hydrochloride 500 MG Oral Tablet"),
    ("310965", "ibuprofen 200 MG Oral Tablet"),
    ("198211", "simvastatin 40 MG Oral Tablet"),
    ("828348", "cyclobenzaprine hydrochloride 10 MG Oral Tablet"),
]
STATUSES = ["active", "resolved"]
SERVICES = [
    ("http://www.ama-assn.org/go/cpt", "97110", "Therapeutic exercises"),
    ("http://www.ama-assn.org/go/cpt", "80053", "Comprehensive metabolic panel"),
    ("http://www.ama-assn.org/go/cpt", "71046", "Radiologic examination, chest; 2 views"),
]


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def sandbox_order() -> dict[str, Any]:
    """The sandbox's 10 mg, 30-day order with its (empty) history: what an integrator sends first."""
    return _fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")


def _condition(i: int, rng: random.Random, subject: dict[str, str], on: str) -> dict[str, Any]:
    system, code, text = rng.choice(CONDITIONS)
    status = {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": rng.choice(STATUSES)}
    return {
        "resourceType": "Condition",
        "id": f"c{i}",
        "subject": subject,
        "onsetDateTime": on,
        "clinicalStatus": {"coding": [status]},
        "code": {"coding": [{"system": system, "code": code, "display": text}], "text": text},
    }


def _medication(i: int, rng: random.Random, subject: dict[str, str], on: str) -> dict[str, Any]:
    code, text = rng.choice(MEDICATIONS)
    week = {"value": 7, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}
    return {
        "resourceType": "MedicationRequest",
        "id": f"m{i}",
        "status": rng.choice(["completed", "stopped"]),
        "intent": "order",
        "subject": subject,
        "authoredOn": on,
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, "display": text}],
            "text": text,
        },
        "dispenseRequest": {"expectedSupplyDuration": week},
    }


def _service(i: int, rng: random.Random, subject: dict[str, str], on: str) -> dict[str, Any]:
    system, code, text = rng.choice(SERVICES)
    return {
        "resourceType": "ServiceRequest",
        "id": f"s{i}",
        "status": "completed",
        "intent": "order",
        "subject": subject,
        "authoredOn": on,
        "code": {"coding": [{"system": system, "code": code}], "text": text},
    }


def history(patient_id: str, entries: int, seed: int = 7) -> dict[str, Any]:
    """Prefetch of ``entries`` resources: the Patient, Conditions, two years of MedicationRequests,
    ServiceRequests, in the proportions 3 : 6 : 1, the same for a seed."""
    rng = random.Random(seed)
    subject = {"reference": f"Patient/{patient_id}"}
    drawn: dict[str, list[dict[str, Any]]] = {"conditions": [], "medications": [], "imaging": []}
    for i in range(entries - 1):
        on = (TODAY - timedelta(days=rng.randrange(730))).isoformat()
        kind = i % 10
        if kind < 3:
            drawn["conditions"].append(_condition(i, rng, subject, on))
        elif kind < 9:
            drawn["medications"].append(_medication(i, rng, subject, on))
        else:
            drawn["imaging"].append(_service(i, rng, subject, on))
    patient = {"resourceType": "Patient", "id": patient_id, "birthDate": "1971-07-02", "gender": "female"}
    bundles = {
        key: {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}
        for key, resources in drawn.items()
    }
    return {"patient": patient, **bundles}


def with_history(entries: int) -> dict[str, Any]:
    request = sandbox_order()
    request["prefetch"] = history(request["context"]["patientId"], entries)
    return request


def fetching(fhir_base: str) -> dict[str, Any]:
    """No prefetch at all: the service fetches the patient's 50-entry history from ``fhir_base``."""
    request = sandbox_order()
    request.pop("prefetch", None)
    request["fhirServer"] = fhir_base
    return request


def six_rules() -> dict[str, Any]:
    return _fixture("fhir-versions/r4-cyclobenzaprine-10mg-tid-30-days.json")


def fhir_resources(entries: int) -> list[dict[str, Any]]:
    """The same 50-entry history as resources, for the FHIR test server."""
    data = history(sandbox_order()["context"]["patientId"], entries)
    return [
        data["patient"],
        *(e["resource"] for key in ("conditions", "medications", "imaging") for e in data[key]["entry"]),
    ]


def scenarios(fhir_base: str) -> dict[str, dict[str, Any]]:
    return {
        "sandbox order": sandbox_order(),
        "50 prefetch entries": with_history(50),
        "500 prefetch entries": with_history(500),
        FETCHED: fetching(fhir_base),
        "six rules fire": six_rules(),
    }


def copy_of(request: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(request)
