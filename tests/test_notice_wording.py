"""What the service's own notice cards say about the data behind the checks: each field in words a
clinician reads (the patient record, imaging orders), each said once, and the patient record that
could not be read named as the reason the older-adult checks did not run, as is a birth date that is no date."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture

SANDBOX = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
OLDER_ADULT = "cyclobenzaprine-older-adult/fires-age-65-10mg.json"


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def notice(client: TestClient, request: dict[str, Any], code: str) -> dict[str, Any]:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    card = response.json()["cards"][-1]
    assert card["source"]["topic"]["code"] == code
    return card


def test_another_patients_record_is_said_once_and_not_as_history(module: TestClient) -> None:
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["id"] = "someone-else-4471"
    card = notice(module, request, "other-patient-data")
    assert card["detail"].lower().count("the patient record") == 1
    assert "were left out" not in card["detail"]


def test_another_patients_imaging_order_is_said_as_imaging_orders(module: TestClient) -> None:
    request = fixture(SANDBOX)
    order = {
        "resourceType": "ServiceRequest",
        "id": "mri-1",
        "status": "completed",
        "intent": "order",
        "subject": {"reference": "Patient/someone-else-4471"},
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]},
    }
    request["prefetch"]["imaging"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": order}]}
    card = notice(module, request, "other-patient-data")
    assert "Another patient's imaging orders were left out" in card["detail"]


def test_a_patient_record_that_could_not_be_read_is_said_with_what_it_costs(module: TestClient) -> None:
    request = fixture(SANDBOX)
    del request["prefetch"]["patient"]
    request["fhirServer"] = "http://127.0.0.1:9/fhir"  # nothing listens: the record is not read
    card = notice(module, request, "partial-history")
    assert card["summary"] == "The patient record could not be read: the checks for older adults did not run"
    assert "The patient record could not be read: the age is unknown" in card["detail"]


@pytest.mark.parametrize("born", ["04/07/1950", "1950-02-30", "1950-13-01", 1950, ""])
def test_a_birth_date_that_is_no_date_is_said_not_read_as_no_age(module: TestClient, born: object) -> None:
    """A 76-year-old's birthDate in the US order (or a day no month has) left the age unknown, as
    a record without one does, and the older-adult card went missing with no word."""
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["birthDate"] = born
    card = notice(module, request, "partial-history")
    assert card["summary"] == "The patient's birth date could not be read: the checks for older adults did not run"
    assert "The patient's birth date could not be read: the age is unknown" in card["detail"]
    assert "history" not in card["detail"]


def test_a_record_without_a_birth_date_is_the_clients_choice_not_a_notice(module: TestClient) -> None:
    request = fixture(OLDER_ADULT)
    del request["prefetch"]["patient"]["birthDate"]
    response = module.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == ["cyclobenzaprine-duration"]


def test_a_history_read_in_part_and_a_birth_date_that_is_no_date_are_said_in_one_card(module: TestClient) -> None:
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["birthDate"] = "04/07/1950"
    request.pop("fhirServer", None)  # a next page with nobody to read it from: conditions read in part
    request["prefetch"]["conditions"]["link"] = [
        {"relation": "next", "url": "http://ehr.example/fhir/Condition?page=2"}
    ]
    card = notice(module, request, "partial-history")
    assert card["summary"] == "The patient's history was not read in full: checks may be incomplete"
    assert "The patient's birth date could not be read: the age is unknown" in card["detail"]
    assert "Not all of the patient's conditions could be read." in card["detail"]


def test_a_birth_date_that_is_no_date_is_logged_without_the_date_or_the_patient(
    module: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator sees why the notice came; the log holds no patient data (a birth date is PHI)."""
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["birthDate"] = "04/07/1950"
    with caplog.at_level("WARNING"):
        notice(module, request, "partial-history")
    logged = [r.getMessage() for r in caplog.records if r.name == "cds_service.facts.patient"]
    assert logged == ["patient: a birthDate that is no date: the age unknown, the older-adult checks not run"]
    assert not any(
        "1950" in r.getMessage() or request["context"]["patientId"] in r.getMessage() for r in caplog.records
    )
