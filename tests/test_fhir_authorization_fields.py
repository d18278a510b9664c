"""``fhirAuthorization`` (CDS Hooks 2.0): ``expires_in`` is a number of seconds, 0 or more, ``scope`` and
``subject`` are required. A lifetime sent as a string or a boolean, or a missing subject, is the
client's error: a 400 naming the field, not a token taken on trust."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture

SANDBOX = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def with_authorization(**changes: Any) -> dict[str, Any]:
    """The sandbox's complete request (nothing is fetched) with a token for a FHIR server."""
    authorization = {"access_token": "t0ken", "token_type": "Bearer", "expires_in": 300, "scope": "s", "subject": "c"}
    authorization.update(changes)
    request = fixture(SANDBOX)
    request["fhirServer"] = "https://fhir.example.org/r4"
    request["fhirAuthorization"] = {k: v for k, v in authorization.items() if v is not None}
    return request


@pytest.mark.parametrize("expires_in", [300, 299.5, 10**20, 0])
def test_a_lifetime_of_any_number_of_seconds_is_accepted(client: TestClient, expires_in: float) -> None:
    assert client.post(SELECT, json=with_authorization(expires_in=expires_in)).status_code == 200


@pytest.mark.parametrize("expires_in", ["300", True])
def test_a_lifetime_that_is_not_a_number_is_400_naming_it(client: TestClient, expires_in: object) -> None:
    response = client.post(SELECT, json=with_authorization(expires_in=expires_in))
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["fhirAuthorization.expires_in"]  # the field, not a type's branch
    assert issue["diagnostics"] == "fhirAuthorization.expires_in: Input should be a valid number"


@pytest.mark.parametrize("expires_in", [-1, -0.5, -(10**20)])
def test_a_negative_lifetime_is_400_naming_it(client: TestClient, expires_in: float) -> None:
    """A lifetime in seconds is never below 0: -1 was taken as a token like any other."""
    response = client.post(SELECT, json=with_authorization(expires_in=expires_in))
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["fhirAuthorization.expires_in"]
    assert issue["diagnostics"] == "fhirAuthorization.expires_in: Input should be greater than or equal to 0"


@pytest.mark.parametrize("field", ["scope", "subject"])
def test_a_token_without_scope_or_subject_is_400_naming_it(client: TestClient, field: str) -> None:
    response = client.post(SELECT, json=with_authorization(**{field: None}))
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == [f"fhirAuthorization.{field}"]
    assert f"fhirAuthorization.{field}: Field required" in issue["diagnostics"]
