"""Client authentication (CDS_AUTH_MODE=required) over HTTP, with real ES384 and RS384 tokens:
the keys, the test clock, the trusted-clients file and the clients built on them, shared by
this package's modules."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, Clock, fixture
from tests.tokens import ISSUER, SigningKey, jwks

NOW = 1_795_000_000.0
BASE = "http://testserver"
REQUEST = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"


@pytest.fixture(scope="module")
def es384() -> SigningKey:
    return SigningKey.generate("ES384")


@pytest.fixture(scope="module")
def rs384() -> SigningKey:
    return SigningKey.generate("RS384")


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def trust(tmp_path: Path, es384: SigningKey, rs384: SigningKey) -> Callable[..., Path]:
    """Writes a trusted-clients file; by default one EHR holding both test keys inline."""

    def write(*clients: dict[str, Any]) -> Path:
        path = tmp_path / "trusted-clients.json"
        default = {"iss": ISSUER, "jwks": jwks(es384, rs384), "fhir_servers": ["https://fhir.example.org/r4"]}
        path.write_text(json.dumps(list(clients) or [default]))
        return path

    return write


@pytest.fixture
def secure(
    make_client: Callable[..., TestClient], trust: Callable[..., Path], clock: Clock
) -> Callable[..., TestClient]:
    """Clients with authentication required, on the test clock; by default trusting the one test EHR."""

    def make(trusted_file: Path | None = None, **overrides: Any) -> TestClient:
        return make_client(auth_mode="required", trusted_clients_file=trusted_file or trust(), clock=clock, **overrides)

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(client: TestClient, token: str | None, path: str = SELECT) -> Any:
    return client.post(path, json=fixture(REQUEST), headers=bearer(token) if token else {})


@pytest.fixture
def rejected(caplog: pytest.LogCaptureFixture) -> Callable[[Any, str], None]:
    """401 for the expected reason: the caller sees the generic answer, the log says why."""

    def check(response: Any, reason: str) -> None:
        assert_401(response)
        assert reason in caplog.text

    return check


def assert_401(response: Any) -> None:
    """Every rejection looks the same: nothing in it tells an attacker which check failed."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "login",
                "diagnostics": "authentication failed: a valid CDS Hooks client JWT is required",
            }
        ],
    }
