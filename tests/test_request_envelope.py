"""The envelope's own bounds: a ``hookInstance`` of up to 200 characters, a ``fhirServer`` that is
an http(s) URL of visible ASCII. Outside them, a 400 naming that field alone (a token sent beside
a bad server is not said to lack one)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture

SANDBOX = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
TOKEN = {"access_token": "t0ken", "token_type": "Bearer", "expires_in": 300, "scope": "s", "subject": "c"}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def fields_refused(response: Any) -> list[str]:
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    for field in issue["expression"]:
        assert field in issue["diagnostics"]
    return issue["expression"]


@pytest.mark.parametrize(("length", "status"), [(200, 200), (201, 400)])
def test_a_hook_instance_of_up_to_200_characters_is_read(client: TestClient, length: int, status: int) -> None:
    request = {**fixture(SANDBOX), "hookInstance": "h" * length}
    response = client.post(SELECT, json=request)
    assert response.status_code == status, response.text
    if status == 400:
        assert fields_refused(response) == ["hookInstance"]


@pytest.mark.parametrize(
    "server", ["https://fhir example.org/r4", "https:fhir.example.org/r4", "ftp://fhir.example.org/r4", "https://"]
)
def test_a_fhir_server_not_an_http_url_is_400_naming_it(client: TestClient, server: str) -> None:
    request = {**fixture(SANDBOX), "fhirServer": server}
    assert fields_refused(client.post(SELECT, json=request)) == ["fhirServer"]


def test_a_token_beside_a_bad_fhir_server_names_only_the_server(client: TestClient) -> None:
    request = {**fixture(SANDBOX), "fhirServer": "https://fhir example.org/r4", "fhirAuthorization": TOKEN}
    assert fields_refused(client.post(SELECT, json=request)) == ["fhirServer"]


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        (SELECT, "hook", "order-sig" + "n" * 100_000),
        (SELECT, "context.selections", "MedicationRequest " + "x" * 100_000),
        (SELECT.replace("order-select", "order-select" + "x" * 10_000), "", ""),
    ],
    ids=["hook", "selections", "service id"],
)
def test_a_value_refused_is_repeated_cut_short(client: TestClient, path: str, field: str, value: str) -> None:
    """An error names the field and shows enough of the value to recognise it, never all of it:
    a 100 kB hook name was a 100 kB answer, and an order id may be built from the patient's (a
    security review)."""
    request = fixture(SANDBOX)
    if field == "hook":
        request["hook"] = value
    elif field:
        request["context"]["selections"] = [value]
    response = client.post(path, json=request)
    assert response.status_code in (400, 404), response.text
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert len(diagnostics) < 300 and "…" in diagnostics, diagnostics
    if field:
        assert fields_refused(response) == [field]
