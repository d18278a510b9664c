"""What an operator runs the service on: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds_service.settings import Settings
from tests.conftest import SELECT, fixture
from tests.fhir_server import FhirTestServer


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_head_as_get(client: TestClient, path: str) -> None:
    """Load balancers probe with HEAD too (RFC 9110: wherever GET is answered); it was a 405."""
    response = client.head(path)
    assert response.status_code == 200 and response.content == b""


def test_healthz_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_and_content(client: TestClient, settings: Settings) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"]["database"] == "ok, schema version 9"
    assert "17 rules" in ready.json()["checks"]["terminology"]

    connection = sqlite3.connect(settings.data_dir / "cds-service.db")
    connection.execute("DROP TABLE feedback")
    connection.commit()
    connection.close()
    broken = client.get("/readyz")
    assert broken.status_code == 503
    assert broken.json()["status"] == "unavailable"
    assert broken.json()["checks"]["database"].startswith("unavailable")


def test_probes_metrics_and_the_services_description_need_no_token(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    trusted = tmp_path / "trusted.json"
    trusted.write_text('[{"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks.json"}]')
    client = make_client(auth_mode="required", trusted_clients_file=trusted)
    assert client.get("/cds-services").status_code == 401
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path
    # The services' description and its page hold no data, and need none either; no second page.
    for path in ("/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path
    assert client.get("/redoc").status_code == 404


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") or line.startswith(f"{name} "):
            series, value = line.rsplit(" ", 1)
            found = ",".join(sorted(series[series.find("{") + 1 : -1].split(","))) if "{" in series else ""
            if found == wanted:
                return float(value)
    return 0.0


def test_metrics_count_requests_latency_cards_feedback_and_fetch_errors(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    body = client.post(SELECT, json=fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")).json()
    [card] = body["cards"]
    client.post(
        SELECT + "/feedback",
        json={
            "feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}]
        },
    )
    client.post(SELECT, content=b"{", headers={"Content-Type": "application/json"})
    fetching = fixture("sandbox/order-select-r4.json")
    fetching["fhirServer"] = fhir_server.base
    fetching["context"]["patientId"] = "harness-pt-1"
    fhir_server.fail_for = {"Condition"}
    assert client.post(SELECT, json=fetching).status_code == 412

    text = client.get("/metrics").text
    assert _metric(text, "cds_cards_total", rule="cyclobenzaprine-duration", indicator="warning") == 1
    assert _metric(text, "cds_hook_seconds_count", service="back-spasm-order-select") == 1
    assert _metric(text, "cds_requests_total", route="/cds-services/{service_id}", status="200") == 1
    assert _metric(text, "cds_requests_total", route="/cds-services/{service_id}", status="400") == 1
    assert _metric(text, "cds_requests_total", route="/cds-services/{service_id}", status="412") == 1
    assert _metric(text, "cds_requests_total", route="/cds-services/{service_id}/feedback", status="200") == 1
    assert _metric(text, "cds_feedback_total", outcome="overridden") == 1
    assert _metric(text, "cds_fhir_fetch_errors_total", key="conditions") == 1
    assert "harness-pt-1" not in text
