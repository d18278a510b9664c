"""Prefetch fetched only from the FHIR servers listed for the caller (or, with auth off, for the
service)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.auth.conftest import BASE, NOW, bearer
from tests.conftest import SELECT, fetching_request, rule_ids
from tests.fhir_server import FhirTestServer
from tests.tokens import ISSUER, SigningKey, claims, jwks


def test_fhir_server_not_listed_for_the_caller_is_never_contacted(
    secure: Callable[..., TestClient], es384: SigningKey, fhir_server: FhirTestServer
) -> None:
    client = secure()  # the caller's list: https://fhir.example.org/r4 only
    token = es384.sign(claims(BASE + SELECT, NOW))
    response = client.post(SELECT, json=fetching_request(fhir_server.base), headers=bearer(token))
    assert response.status_code == 412, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["prefetch.conditions", "prefetch.medications"]
    assert "not on this service's list of FHIR servers" in issue["diagnostics"]
    assert fhir_server.seen == []


def test_fhir_server_listed_for_the_caller_is_fetched_from(
    secure: Callable[..., TestClient], trust: Callable[..., Path], es384: SigningKey, fhir_server: FhirTestServer
) -> None:
    client = secure(trust({"iss": ISSUER, "jwks": jwks(es384), "fhir_servers": [fhir_server.base + "/"]}))
    token = es384.sign(claims(BASE + SELECT, NOW))
    response = client.post(SELECT, json=fetching_request(fhir_server.base), headers=bearer(token))
    assert response.status_code == 200, response.text
    assert "cyclobenzaprine-duration" in rule_ids(response.json())
    assert len([seen for seen in fhir_server.seen if not seen.path.endswith("/metadata")]) == 4


def test_with_auth_off_only_the_configured_servers_are_fetched_from(
    make_client: Callable[..., TestClient], fhir_server: FhirTestServer
) -> None:
    """The test settings list "loopback" (the default lists nothing: tests/test_security_defaults.py)."""
    outside = make_client().post(SELECT, json=fetching_request("https://fhir.elsewhere.example.org/r4"))
    assert outside.status_code == 412
    assert "not on this service's list" in outside.json()["issue"][0]["diagnostics"]
    plain_http = make_client().post(SELECT, json=fetching_request("http://fhir.elsewhere.example.org/r4"))
    assert "must use https" in plain_http.json()["issue"][0]["diagnostics"]

    listed_elsewhere = make_client(fhir_servers=["https://fhir.example.org/r4"])
    assert listed_elsewhere.post(SELECT, json=fetching_request(fhir_server.base)).status_code == 412
    assert fhir_server.seen == []
    assert make_client().post(SELECT, json=fetching_request(fhir_server.base)).status_code == 200
    assert fhir_server.seen


@pytest.mark.parametrize(
    ("server", "reason"),
    [
        ("https://fhir.example.org/r4/../admin", "not on this service's list"),  # the host's /admin, token and all
        ("https://fhir.example.org/r4x", "not on this service's list"),
        ("https://10.0.0.7/r4", "not on this service's list"),  # a private address is not this machine
        ("http://192.168.1.20/r4", "must use https"),
        ("https://clinician:secret@fhir.example.org/r4", "must not carry credentials"),
        ("https://fhir.example.org/r4?_format=json", "must not have a query or fragment"),
        ("https://fhir.example.org/r4#top", "must not have a query or fragment"),
        ("https:///r4", "has no host"),
    ],
)
def test_a_fhir_server_beside_a_listed_one_is_refused_unfetched(
    make_client: Callable[..., TestClient], server: str, reason: str
) -> None:
    """Only a listed base, exactly, or a server on this machine when "loopback" is listed: a
    neighbour of a listed one (another path, the private network, a base with credentials or a
    query the service would send on) is a 412 saying why, nothing fetched."""
    client = make_client(fhir_servers=["loopback", "https://fhir.example.org/r4"])
    response = client.post(SELECT, json=fetching_request(server))
    assert response.status_code == 412, response.text
    assert reason in response.json()["issue"][0]["diagnostics"]
