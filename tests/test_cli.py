"""``cds-service``: the console script's evaluate and serve commands."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from cds_service.cli import main
from tests.conftest import FIXTURES, SELECT, TODAY, fixture
from tests.serving import CLI, serve
from tests.tokens import ISSUER, SigningKey, claims, jwks


def _without_uuids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_uuids(v) for k, v in value.items() if k != "uuid"}
    if isinstance(value, list):
        return [_without_uuids(v) for v in value]
    return value


@pytest.mark.parametrize(
    "name",
    [
        "cyclobenzaprine-hepatic-impairment/fires-warning-fatty-liver-10mg.json",
        "refractory-spasm-imaging/fires-sciatica.json",
        "cyclobenzaprine-duration/silent-no-medication-yet.json",
    ],
)
def test_evaluate_answers_exactly_as_http(client: TestClient, capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert main(["evaluate", str(FIXTURES / name), "--today", TODAY.isoformat()]) == 0
    offline = json.loads(capsys.readouterr().out)
    online = client.post(SELECT, json=fixture(name)).json()
    assert _without_uuids(offline) == _without_uuids(online)


def test_evaluate_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    text = (FIXTURES / "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json").read_text()
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(text))
    assert main(["evaluate", "-", "--today", TODAY.isoformat()]) == 0
    [card] = json.loads(capsys.readouterr().out)["cards"]
    assert card["source"]["topic"]["code"] == "cyclobenzaprine-duration"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        (
            json.dumps({**fixture("sandbox/order-select-r4.json"), "hook": "patient-view"}),
            "no service answers 'patient-view'",
        ),
        (json.dumps({"hook": "order-select", "context": {}}), "hookInstance"),
        (
            json.dumps(fixture("sandbox/order-select-r4.json")),
            "prefetch.conditions, prefetch.medications: not in the request",
        ),
    ],
)
def test_evaluate_rejects_invalid_input_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "request.json"
    path.write_text(content)
    assert main(["evaluate", str(path), "--today", TODAY.isoformat()]) == 2
    assert message in capsys.readouterr().err


def test_evaluate_missing_file_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "/no/such/request.json"]) == 2
    assert "cannot read /no/such/request.json" in capsys.readouterr().err


def test_console_script_evaluates(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *CLI,
            "evaluate",
            str(FIXTURES / "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"),
            "--today",
            "2026-11-21",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cards"][0]["source"]["topic"]["code"] == "cyclobenzaprine-duration"


def test_serve_requires_client_tokens_by_default(tmp_path: Path) -> None:
    key = SigningKey.generate("ES384")
    trusted = tmp_path / "trusted-clients.json"
    trusted.write_text(json.dumps([{"iss": ISSUER, "jwks": jwks(key)}]))
    server, port = serve(tmp_path, CDS_TRUSTED_CLIENTS_FILE=str(trusted))
    try:
        url = f"http://127.0.0.1:{port}/cds-services"
        assert requests.get(url, timeout=5).status_code == 401
        token = key.sign(claims(url, time.time()))
        response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert response.status_code == 200
        assert {s["id"] for s in response.json()["services"]} == {"back-spasm-order-select", "back-spasm-order-sign"}
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_serve_logs_json_lines_with_the_hook_instance_and_no_patient_data(tmp_path: Path) -> None:
    request = fixture("cyclobenzaprine-duration/fires-cumulative-prior-course.json")
    server, port = serve(tmp_path, CDS_AUTH_MODE="off")
    try:
        response = requests.post(f"http://127.0.0.1:{port}{SELECT}", json=request, timeout=10)
        assert response.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
    lines = [json.loads(line) for line in server.stdout.read().decode().splitlines()]  # type: ignore[union-attr]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    hook = [line for line in lines if line.get("hookInstance") == request["hookInstance"]]
    assert any("card(s)" in line["message"] for line in hook)
    text = json.dumps(lines)
    patient = request["prefetch"]["patient"]
    for private in (patient["birthDate"], patient["name"][0]["family"], "Cyclobenzaprine hydrochloride"):
        assert private not in text


def test_serve_with_auth_off_says_so_loudly(tmp_path: Path) -> None:
    server, port = serve(tmp_path, CDS_AUTH_MODE="off")
    try:
        assert requests.get(f"http://127.0.0.1:{port}/cds-services", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert "AUTHENTICATION IS OFF" in server.stdout.read().decode()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("clients", "message"),
    [
        (None, "no client is trusted"),
        ("not json", "is not JSON"),
        ([{"iss": ISSUER}], "give the issuer's keys"),
        ([{"iss": ISSUER, "jwks_url": "http://keys.example.org/jwks.json"}], "[0].jwks_url: must use https"),
        ([{"iss": ISSUER, "jwks": {"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}}], "not an EC or RSA"),
        (
            [{"iss": ISSUER, "jwks_url": "https://a.example.org/k", "fhir_servers": ["http://fhir.example.org"]}],
            "must use https",
        ),
        ([{"iss": ISSUER, "jwks_url": "https://a.example.org/k"}] * 2, "listed twice"),
    ],
)
def test_serve_refuses_unusable_trusted_clients(tmp_path: Path, clients: Any, message: str) -> None:
    env = {}
    if clients is not None:
        trusted = tmp_path / "trusted-clients.json"
        trusted.write_text(clients if isinstance(clients, str) else json.dumps(clients))
        env["CDS_TRUSTED_CLIENTS_FILE"] = str(trusted)
    server, _ = serve(tmp_path, **env)
    assert server.wait(timeout=10) == 2
    output = server.stdout.read().decode()  # type: ignore[union-attr]
    assert "invalid configuration" in output
    assert message in output


def test_serve_refuses_workers_on_the_embedded_database(tmp_path: Path) -> None:
    """Several processes on one SQLite file would queue on its lock; they need PostgreSQL."""
    server, _ = serve(tmp_path, "--workers", "2", CDS_AUTH_MODE="off")
    assert server.wait(timeout=10) == 2
    output = server.stdout.read().decode()  # type: ignore[union-attr]
    assert "--workers needs a database the processes share" in output and "CDS_DATABASE_URL" in output
