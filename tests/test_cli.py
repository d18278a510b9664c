"""``cds-service``: the console script's evaluate and serve commands."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.cli import main
from cds_service.pipeline.knowledge import Knowledge
from cds_service.rules import all_rules
from cds_service.settings import Settings, read_settings
from tests.conftest import FIXTURES, NOON, SELECT, TODAY, Clock, Served, fixture
from tests.serving import CLI, launch, serve
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
        "cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-10mg.json",
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
    raw = (FIXTURES / "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw)))  # as a real one: text over bytes
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
        ("{}", "hook: missing, or not a string; pass --service"),  # was "no service answers None"
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


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        # The settings' checks did not see the command line: 70000 listened on 4464.
        (["serve", "--port", "70000"], "argument --port: 70000 is not from 1 to 65535"),
        (["serve", "--port", "0"], "argument --port: 0 is not from 1 to 65535"),
        (["serve", "--port", "65536"], "argument --port: 65536 is not from 1 to 65535"),
        (["serve", "--workers", "0"], "argument --workers: 0 is not 1 or more"),
        # Each bound itself is accepted: argparse goes on to the next argument, and refuses that.
        (["serve", "--port", "1", "--workers", "0"], "argument --workers: 0 is not 1 or more"),
        (["serve", "--port", "65535", "--workers", "0"], "argument --workers: 0 is not 1 or more"),
        # A window of days counted back from here ran off the calendar: a traceback.
        (["evaluate", "-", "--today", "0001-01-10"], "argument --today: 0001-01-10 is not from 1970-01-01"),
        # ISO 8601's basic and week forms, which Python 3.11 reads: the message names one form.
        (["evaluate", "-", "--today", "20261121"], "argument --today: 20261121 is not a date (YYYY-MM-DD)"),
        (["evaluate", "-", "--today", "2026-W47-6"], "argument --today: 2026-W47-6 is not a date (YYYY-MM-DD)"),
    ],
)
def test_a_command_line_value_out_of_range_is_refused_naming_it(
    capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_evaluate_refuses_a_service_with_no_enabled_rule_as_the_route_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Discovery leaves such a service out and the route answers 404; the command line answered
    ``{"cards": []}`` for it, "no advice" where nothing was checked."""
    for rule in all_rules():
        if "order-sign" in rule.hooks:
            monkeypatch.setenv(f"CDS_RULES__{rule.id.upper().replace('-', '_')}__ENABLED", "false")
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)  # not another test's, cached
    path = tmp_path / "request.json"
    path.write_text(
        json.dumps({**fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"), "hook": "order-sign"})
    )
    assert main(["evaluate", str(path), "--today", TODAY.isoformat()]) == 2
    captured = capsys.readouterr()
    assert "no CDS service with id 'back-spasm-order-sign': every check it runs is switched off here" in captured.err
    assert json.loads(captured.out)["issue"][0]["code"] == "not-found"


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
            TODAY.isoformat(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cards"][0]["source"]["topic"]["code"] == "cyclobenzaprine-duration"


def test_evaluate_refuses_an_endless_file_without_reading_it_whole() -> None:
    # It read the whole file before sizing it: /dev/zero filled memory until the process died.
    def small_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    result = subprocess.run(
        [*CLI, "evaluate", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=small_memory,
    )
    assert result.returncode == 2, result.stderr
    assert "the body is over 5242880 bytes, the most accepted" in result.stderr


def test_output_read_in_part_ends_quietly() -> None:
    """``cds-service evaluate … | head``: the reader gone is no error of ours, and was logged
    as one with its traceback (an informaticist's review)."""
    request = str(FIXTURES / "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    command = [*CLI, "evaluate", request, "--today", TODAY.isoformat()]
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}  # as a shell's
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=buffered) as process:
        process.stdout.close()  # type: ignore[union-attr]
        err = process.stderr.read().decode()  # type: ignore[union-attr]
        assert process.wait(timeout=60) == 141
    assert err == ""


def test_serve_requires_client_tokens_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, knowledge_for: Callable[[Settings], Knowledge | None]
) -> None:
    """The app ``serve`` builds when the environment sets only the data directory and the trusted
    clients, run in process (the tests below run the command itself)."""
    key = SigningKey.generate("ES384")
    trusted = tmp_path / "trusted-clients.json"
    trusted.write_text(json.dumps([{"iss": ISSUER, "jwks": jwks(key)}]))
    for name in [name for name in os.environ if name.startswith("CDS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CDS_TRUSTED_CLIENTS_FILE", str(trusted))
    settings = Settings()
    base = "http://127.0.0.1:8000"
    app = create_app(settings, knowledge=knowledge_for(settings), clock=Clock(NOON))
    with TestClient(app, base_url=base) as client:
        url = f"{base}/cds-services"
        assert client.get(url).status_code == 401
        token = key.sign(claims(url, NOON))
        response = client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert {s["id"] for s in response.json()["services"]} == {"back-spasm-order-select", "back-spasm-order-sign"}


# The tests below run `cds-service serve` itself, as their `serve` mark says: the processes are
# started as the session starts, and each test takes its own (conftest.py, `served`).


@pytest.mark.serve(CDS_AUTH_MODE="off")
def test_serve_logs_json_lines_with_the_hook_instance_and_no_patient_data(served: Served) -> None:
    request = fixture("cyclobenzaprine-duration/fires-cumulative-prior-course.json")
    server, port = served
    try:
        response = requests.post(f"http://127.0.0.1:{port}{SELECT}", json=request, timeout=10)
        assert response.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
    lines = [json.loads(line) for line in server.stdout.read().decode().splitlines()]  # type: ignore[union-attr]
    assert all({"time", "level", "pid", "logger", "message"} <= set(line) for line in lines)
    assert {line["pid"] for line in lines} == {server.pid}  # told apart from other processes' (--workers)
    hook = [line for line in lines if line.get("hookInstance") == request["hookInstance"]]
    assert any("card(s)" in line["message"] for line in hook)
    text = json.dumps(lines)
    patient = request["prefetch"]["patient"]
    for private in (patient["birthDate"], patient["name"][0]["family"], "Cyclobenzaprine hydrochloride"):
        assert private not in text


@pytest.mark.serve(CDS_AUTH_MODE="off")
def test_serve_with_auth_off_says_so_loudly(served: Served) -> None:
    server, port = served
    try:
        assert requests.get(f"http://127.0.0.1:{port}/cds-services", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert "AUTHENTICATION IS OFF" in server.stdout.read().decode()  # type: ignore[union-attr]


@pytest.mark.serve(CDS_AUTH_MODE="off")
def test_serve_stopped_with_ctrl_c_shuts_the_app_down_and_exits_0(served: Served) -> None:
    """Ctrl-C (SIGINT) is a clean stop: the app's shutdown runs (card records written) and the
    exit code is 0, not the failed start's 3 a supervisor would restart."""
    server, port = served
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=30) == 0
    assert "Application shutdown complete" in server.stdout.read().decode()  # type: ignore[union-attr]


def _trusting(clients: Any) -> dict[str, Callable[[Path], str]]:
    """The CDS_TRUSTED_CLIENTS_FILE setting of ``clients`` (none for None): a file in the data
    directory holding them, as JSON unless they are text."""

    def write(directory: Path) -> str:
        trusted = directory / "trusted-clients.json"
        trusted.write_text(clients if isinstance(clients, str) else json.dumps(clients))
        return str(trusted)

    return {} if clients is None else {"CDS_TRUSTED_CLIENTS_FILE": write}


@pytest.mark.parametrize(
    ("clients", "message"),
    [
        pytest.param(clients, message, marks=pytest.mark.serve(**_trusting(clients)))
        for clients, message in [
            (None, "no client is trusted"),
            ("not json", "is not JSON"),
            ("[" * 100_000 + "]" * 100_000, "is nested too deep"),  # was a RecursionError's traceback
            ([{"iss": ISSUER}], "give the issuer's keys"),
            ([{"iss": ISSUER, "jwks_url": "http://keys.example.org/jwks.json"}], "[0].jwks_url: must use https"),
            ([{"iss": ISSUER, "jwks": {"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}}], "not an EC or RSA"),
            # PyJWT has no key for "none": it raised NotImplementedError, a traceback, not this line
            (
                [{"iss": ISSUER, "jwks": {"keys": [{"kty": "EC", "kid": "k", "crv": "P-384", "alg": "none"}]}}],
                "key 'k' cannot be read (NotImplementedError)",
            ),
            # A private RSA key's factors without its d: refused before PyJWT reads (and quotes) it.
            (
                [
                    {
                        "iss": ISSUER,
                        "jwks": {"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB", "p": "AQAB"}]},
                    }
                ],
                "key 'k' is a private key; trust the public key only",
            ),
            (
                [{"iss": ISSUER, "jwks_url": "https://a.example.org/k", "fhir_servers": ["http://fhir.example.org"]}],
                "must use https",
            ),
            ([{"iss": ISSUER, "jwks_url": "https://a.example.org/k"}] * 2, "listed twice"),
            (
                [{"iss": "https://" + "e" * 500, "jwks_url": "https://a.example.org/k"}],
                "[0].iss: String should have at most 500",
            ),
        ]
    ],
)
def test_serve_refuses_unusable_trusted_clients(served: Served, clients: Any, message: str) -> None:
    server, _ = served  # with ``clients`` in its trusted-clients file (the test's mark)
    assert server.wait(timeout=10) == 2
    output = server.stdout.read().decode()  # type: ignore[union-attr]
    assert "invalid configuration" in output
    assert message in output


@pytest.mark.serve("--workers", "2", CDS_AUTH_MODE="off")
def test_serve_refuses_workers_on_the_embedded_database(served: Served) -> None:
    """Several processes on one SQLite file would queue on its lock; they need PostgreSQL."""
    server, _ = served
    assert server.wait(timeout=10) == 2
    output = server.stdout.read().decode()  # type: ignore[union-attr]
    assert "--workers needs a database the processes share" in output and "CDS_DATABASE_URL" in output


@pytest.mark.serve(CDS_AUTH_MODE="off", WEB_CONCURRENCY="2")
def test_serve_runs_the_workers_it_is_told_whatever_web_concurrency_says(served: Served) -> None:
    """uvicorn reads ``WEB_CONCURRENCY`` (which many platforms set) when not told how many
    workers to run: here one process on the SQLite file, as ``--workers`` says by default."""
    server, port = served
    try:
        assert server.poll() is None, server.stdout.read().decode()[-2000:]  # type: ignore[union-attr]
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize("url", ["", "sqlite+pysqlite:///{}/cds.db?timeout=5"], ids=["default", "driver-and-query"])
def test_a_second_serve_on_the_same_sqlite_file_is_refused(tmp_path: Path, url: str) -> None:
    """What stored feedback silences is kept per process between writes (storage.quiet): on
    SQLite that holds only while one process writes the file, so a second one does not start.
    A URL naming the driver, or with a query, was served twice (the file was found only in
    ``sqlite:///`` URLs)."""
    database = {"CDS_DATABASE_URL": url.format(tmp_path)} if url else {}
    first, _ = serve(tmp_path, CDS_AUTH_MODE="off", **database)
    try:
        second, _ = launch(tmp_path, CDS_AUTH_MODE="off", **database)
        assert second.wait(timeout=60) == 2
        output = second.stdout.read().decode()  # type: ignore[union-attr]
        assert "another process serves" in output and "CDS_DATABASE_URL" in output
        assert first.poll() is None
    finally:
        first.terminate()
        first.wait(timeout=10)
    third, port = serve(tmp_path, CDS_AUTH_MODE="off", **database)  # the file is free again once the first stops
    try:
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        third.terminate()
        third.wait(timeout=10)
