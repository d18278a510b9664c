"""A Patient record sent without an id names no other patient: it is the context's patient's,
read (the age it gives fires the older-adult card), and no card says another patient's data was
left out. One with another id is left out (tests/test_one_patient.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture, rule_ids

OLDER_ADULT = "cyclobenzaprine-older-adult/fires-age-65-10mg.json"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


@pytest.mark.parametrize("patient_id", ["absent", None, 7])
def test_a_patient_record_without_a_string_id_is_the_patients_own(client: TestClient, patient_id: object) -> None:
    request = fixture(OLDER_ADULT)
    patient = request["prefetch"]["patient"]
    del patient["id"]
    if patient_id != "absent":
        patient["id"] = patient_id
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    codes = rule_ids(response.json())
    assert "cyclobenzaprine-older-adult" in codes and "other-patient-data" not in codes
