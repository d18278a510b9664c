"""``bench/timed.py``: the service with each stage of a hook call timed where it runs. Its stages
are the pipeline's functions by name; a renamed one must fail here, not leave the in-server
breakdown (``bench/stages.py``, docs/performance.md) silently without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from bench.run import OFF, ON
from bench.stages import stops, take_totals
from bench.timed import APP, APP_END, FRAMING, ROUTE, STAGES
from tests.serving import free_port, wait_until_listening
from tests.tokens import ISSUER, SigningKey, claims, jwks

ROOT = Path(__file__).resolve().parent.parent
ORDER = ROOT / "fixtures" / "cyclobenzaprine-duration" / "fires-sandbox-30-day-supply.json"
SELECT = "back-spasm-order-select"


class Timed:
    """A running ``bench.timed`` service: a hook call to it, and its totals."""

    def __init__(self, server: subprocess.Popen[bytes], port: int, out: Path, log: Path) -> None:
        self.server, self.port, self.out, self.log = server, port, out, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cds-services/{SELECT}"

    def call(self, headers: dict[str, str] | None = None) -> requests.Response:
        return requests.post(self.url, json=json.loads(ORDER.read_text()), headers=headers)

    def totals(self) -> dict[str, Any]:
        """What the service has counted since it was last asked."""
        assert self.server.poll() is None, f"the timed service exited:\n{self.log.read_text()[-2000:]}"
        return take_totals(self.server.pid, self.out / f"{self.server.pid}.json")


@contextmanager
def timed_service(tmp_path: Path, **env: str) -> Iterator[Timed]:
    port, out, log = free_port(), tmp_path / "stages", tmp_path / "server.log"
    out.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CDS_", "BENCH_"))}
    clean |= {"CDS_DATA_DIR": str(tmp_path / "data"), "CDS_AUTH_MODE": "off", "BENCH_STAGES_OUT": str(out), **env}
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.timed", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=clean,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_listening(server, port)
        timed = Timed(server, port, out, log)
        timed.totals()  # the start-up probe's request set aside
        yield timed
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_every_stage_of_a_hook_call_is_timed_once_and_the_totals_start_again(tmp_path: Path) -> None:
    with timed_service(tmp_path) as service:
        answer = service.call()
        assert answer.status_code == 200 and answer.json()["cards"]
        figures = service.totals()
        expected = [stage.label for stage in (*STAGES, *FRAMING)] + [ROUTE, APP, APP_END]
        assert {stage: figures["counts"].get(stage) for stage in expected} == dict.fromkeys(expected, 1)
        assert all(figures["seconds"][stage] > 0 for stage in expected)
        assert figures["seconds"][APP] < figures["seconds"][APP_END]  # the access line comes after the answer
        # The card record is written up to 20 ms later, into these totals or the next: not asked.
        assert not set(service.totals()["counts"]) & set(expected)


def test_a_call_answers_as_soon_as_the_stage_named_is_done(tmp_path: Path) -> None:
    with timed_service(tmp_path, BENCH_STOP_AFTER="prefetch") as service:
        answer = service.call()
        assert answer.status_code == 200 and answer.json() == {"cards": []}
        counts = service.totals()["counts"]
    done = [stage.label for stage in STAGES[: [s.key for s in STAGES].index("prefetch") + 1]]
    assert {stage: counts.get(stage) for stage in done} == dict.fromkeys(done, 1)
    assert not {stage.label for stage in STAGES} - set(done) & set(counts)


def test_with_authentication_on_a_call_answers_as_soon_as_the_caller_is_verified(tmp_path: Path) -> None:
    """``bench/stages.py --stops --auth``: the first stop is authentication alone."""
    key = SigningKey.generate("ES384")
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps([{"iss": ISSUER, "jwks": jwks(key)}]))
    env = {"CDS_AUTH_MODE": "required", "CDS_TRUSTED_CLIENTS_FILE": str(clients), "BENCH_STOP_AFTER": "auth"}
    with timed_service(tmp_path, **env) as service:
        assert service.call().status_code == 401  # no token: refused, never answered early
        token = key.sign(claims(service.url, time.time()))
        answer = service.call({"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json() == {"cards": []}
        counts = service.totals()["counts"]
    assert STAGES[0].key == "auth"
    assert counts.get(STAGES[0].label) == 2  # the refused call's check counts too
    assert not {stage.label for stage in STAGES[1:]} & set(counts)


def test_the_stops_start_with_authentication_only_when_it_is_on() -> None:
    assert stops(ON)[0] == "auth"
    assert "auth" not in stops(OFF)
    assert "body" not in stops(ON) + stops(OFF)
    assert stops(ON)[1:] == stops(OFF) and stops(OFF)[-1] == "cards"
