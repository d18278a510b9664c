"""``cds-service``: the console script's evaluate and serve commands."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from cds_service.cli import main
from tests.conftest import FIXTURES, SELECT, TODAY, fixture

CLI = [sys.executable, "-m", "cds_service"]


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
        (json.dumps(fixture("sandbox/order-select-r4.json")), "prefetch conditions, medications"),
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_discovery_on_the_given_port(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "CDS_DATA_DIR": str(tmp_path)}
    server = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/cds-services", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
                assert time.monotonic() < deadline, "the service did not start within 30 s"
                time.sleep(0.2)
        assert response.status_code == 200
        assert {s["id"] for s in response.json()["services"]} == {"back-spasm-order-select", "back-spasm-order-sign"}
    finally:
        server.terminate()
        server.wait(timeout=10)
