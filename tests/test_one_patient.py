"""Every resource of a call is the context's patient's: a Patient record, a draft or a history
entry naming another patient is refused with the field named (400 when the client sent it, 412
when the FHIR server answered with it), never read into a card about this patient."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture, rule_ids
from tests.fhir_server import FhirTestServer

OLDER_ADULT = "cyclobenzaprine-older-adult/fires-age-65-10mg.json"
HEPATIC = "cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json"


def refused(response: Any, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    [issue] = response.json()["issue"]
    assert issue["expression"] == [field]
    assert "another patient" in issue["diagnostics"]
    return issue["diagnostics"]


def test_a_patient_record_of_another_patient_is_400(client: TestClient) -> None:
    request = fixture(OLDER_ADULT)
    assert "cyclobenzaprine-older-adult" in rule_ids(client.post(SELECT, json=request).json())
    patient_id = request["context"]["patientId"]
    request["context"]["patientId"] = "someone-else-4471"
    for draft in request["context"]["draftOrders"]["entry"]:
        draft["resource"]["subject"] = {"reference": "Patient/someone-else-4471"}
    message = refused(client.post(SELECT, json=request), 400, "prefetch.patient")
    assert patient_id not in message and "someone-else-4471" not in message  # ids stay out of answers and logs


@pytest.mark.parametrize(
    "reference",
    ["Patient/other-22", "https://ehr.example.org/fhir/Patient/other-22", "Patient/other-22/_history/3"],
)
def test_a_history_entry_of_another_patient_is_400(client: TestClient, reference: str) -> None:
    request = fixture(HEPATIC)
    request["prefetch"]["conditions"]["entry"][0]["resource"]["subject"] = {"reference": reference}
    refused(client.post(SELECT, json=request), 400, "prefetch.conditions")


def test_a_draft_for_another_patient_is_400(client: TestClient) -> None:
    request = fixture(HEPATIC)
    request["context"]["draftOrders"]["entry"][0]["resource"]["subject"] = {"reference": "Patient/other-22"}
    refused(client.post(SELECT, json=request), 400, "context.draftOrders")


@pytest.mark.parametrize(
    "subject",
    [
        None,
        {"display": "the patient"},
        {"reference": "#contained-patient"},
        {"reference": "urn:uuid:0c3f1a1e-7b0e-4a53-9d53-4e5b0b1f0d9a"},
    ],
)
def test_a_subject_that_names_no_one_else_is_read(client: TestClient, subject: dict[str, str] | None) -> None:
    request = fixture(HEPATIC)
    condition = request["prefetch"]["conditions"]["entry"][0]["resource"]
    condition.pop("subject", None)
    if subject is not None:
        condition["subject"] = subject
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert "cyclobenzaprine-hepatic-impairment" in rule_ids(response.json())


def test_a_fhir_server_answering_with_another_patients_record_is_412(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    request = fixture(OLDER_ADULT)
    patient = request["prefetch"].pop("patient")
    fhir_server.canned = {"Patient": (200, {**patient, "id": "someone-else"})}  # asked for the context's patient
    request["fhirServer"] = fhir_server.base
    refused(client.post(SELECT, json=request), 412, "prefetch.patient")
    assert fhir_server.seen  # it was asked
