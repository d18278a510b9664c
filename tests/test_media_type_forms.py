"""Media types, their parameter names and content codings are case-insensitive (RFC 9110 §8.3,
§8.4): "Application/JSON", "Charset=UTF-16" and "Identity" are read as their lower-case forms,
so a UTF-16 body is refused whatever case names its charset. A JSON media type is an
``application/`` one: ``text/fhir+json`` is not read."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture

SANDBOX = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "Application/JSON"},
        {"Content-Type": "APPLICATION/FHIR+JSON; CHARSET=UTF-8"},
        {"Content-Type": "application/json", "Content-Encoding": "Identity"},
        {"Content-Type": 'application/json; charset="utf-8"'},  # a parameter value may be quoted
        {"Content-Type": "application/json", "Content-Encoding": ""},  # an empty list of codings: none
    ],
)
def test_json_media_types_in_any_case_are_read(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post(SELECT, content=json.dumps(fixture(SANDBOX)), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["cards"]


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("application/json; Charset=UTF-16", "charset 'utf-16'"),
        ("text/fhir+json", "Content-Type is 'text/fhir+json'"),
    ],
)
def test_a_body_not_json_in_utf_8_is_415_whatever_the_case(client: TestClient, content_type: str, message: str) -> None:
    response = client.post(SELECT, content=json.dumps(fixture(SANDBOX)), headers={"Content-Type": content_type})
    assert response.status_code == 415, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["Content-Type"] and message in issue["diagnostics"]
