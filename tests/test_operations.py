"""What an operator runs the service on: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds_service import __version__
from cds_service.rules import all_rules
from cds_service.settings import Settings
from cds_service.storage.store import Store
from tests.conftest import SELECT, answered, fixture
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
    assert ready.json()["checks"]["database"] == "ok, schema version 15"
    assert f"{len(all_rules())} rules" in ready.json()["checks"]["terminology"]

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


def test_metrics_are_in_the_prometheus_text_format(client: TestClient) -> None:
    """What a Prometheus scraper reads by its content type: the text exposition format."""
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE cds_requests_total counter" in response.text


def test_cards_answered_just_before_the_service_stops_are_stored(make_client: Callable[..., TestClient]) -> None:
    """A card record is written some 20 ms behind its answer: a stop in between writes it (the
    app's shutdown), so the analytics after a restart count the card, as feedback on it needs."""
    first = make_client()
    cards = answered(first, fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))["cards"]
    first.__exit__(None, None, None)
    assert make_client().get("/analytics").json()["totals"]["issued"] == len(cards) == 1


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


def test_a_bug_is_a_500_that_says_nothing_of_it_and_is_counted(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception no handler expects: the caller reads a fixed OperationOutcome, never the
    exception's words (they may quote what the request held); the log has its traceback, and
    /metrics counts the 500 (the exception passes the counting middleware on its way out)."""
    [card] = answered(client, fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))["cards"]

    def a_bug(*_: object, **__: object) -> None:
        raise RuntimeError("a bug quoting pt-8841 and the comment")

    monkeypatch.setattr(Store, "record_feedback", a_bug)
    client._transport.raise_server_exceptions = False  # type: ignore[attr-defined]  # the 500, as a client sees it
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
    response = client.post(SELECT + "/feedback", json={"feedback": [item]})
    assert response.status_code == 500
    assert response.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "exception", "diagnostics": "internal error; the service log has the details"}
        ],
    }
    assert "pt-8841" not in response.text
    [logged] = [r for r in caplog.records if r.getMessage() == "unexpected error"]
    assert logged.exc_info is not None and logged.exc_info[0] is RuntimeError
    text = client.get("/metrics").text
    assert _metric(text, "cds_requests_total", route="/cds-services/{service_id}/feedback", status="500") == 1


def test_a_service_called_with_another_method_is_counted_under_its_route(client: TestClient) -> None:
    """A GET of a service (405) matched the hook route but for its method: counted under the
    route's template with the others, not as an unknown path."""
    assert client.get(SELECT).status_code == 405
    text = client.get("/metrics").text
    assert _metric(text, "cds_requests_total", route="/cds-services/{service_id}", status="405") == 1
    assert _metric(text, "cds_requests_total", route="unmatched", status="405") == 0


def test_the_openapi_document_states_every_error_and_the_token_each_call_needs(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    """The contract integrators (and the fuzzer) read: every error status a hook call answers,
    the release it describes, and with authentication on the client JWT on every operation."""
    document = make_client().get("/openapi.json").json()
    assert document["info"]["version"] == __version__
    call = document["paths"][SELECT]["post"]
    assert set(call["responses"]) == {"200", "400", "412", "413", "415"} and "security" not in call
    trusted = tmp_path / "trusted.json"
    trusted.write_text('[{"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks.json"}]')
    secure = make_client(auth_mode="required", trusted_clients_file=trusted).get("/openapi.json").json()
    operations = [operation for path in secure["paths"].values() for operation in path.values()]
    assert len(operations) == 5  # discovery, and each service's call and feedback
    for operation in operations:
        assert operation["security"] == [{"cdsClientJwt": []}] and "401" in operation["responses"]


def test_the_openapi_document_allows_the_summaries_the_service_answers_and_no_longer(client: TestClient) -> None:
    """CDS Hooks: a summary SHOULD be under 140 characters, and every card this service answers is
    (its cards cut at 139, start-up refuses longer wording). The document said at most 140."""
    card = client.get("/openapi.json").json()["components"]["schemas"]["Card"]
    assert card["properties"]["summary"]["maxLength"] == 139
    assert set(card["properties"]["indicator"]["enum"]) == {"info", "warning", "critical"}
