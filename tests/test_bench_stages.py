"""``bench/timed.py``: the service with each stage of a hook call timed where it runs. Its stages
are the pipeline's functions by name; a renamed one must fail here, not leave the in-server
breakdown (``bench/stages.py``, docs/performance.md) silently without it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from bench.timed import APP, ROUTE, STAGES
from tests.serving import free_port, wait_until_listening

ROOT = Path(__file__).resolve().parent.parent
ORDER = ROOT / "fixtures" / "cyclobenzaprine-duration" / "fires-sandbox-30-day-supply.json"


def _totals(server: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    path = out / f"{server.pid}.json"
    path.unlink(missing_ok=True)
    assert server.poll() is None, "the timed service exited (a stage it wraps no longer exists?)"
    server.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, "no totals written"
        time.sleep(0.02)
    figures: dict[str, Any] = json.loads(path.read_text())
    return figures


def test_every_stage_of_a_hook_call_is_timed_once_and_the_totals_start_again(tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "stages"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    env |= {"CDS_DATA_DIR": str(tmp_path / "data"), "CDS_AUTH_MODE": "off", "BENCH_STAGES_OUT": str(out)}
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.timed", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_listening(server, port)
        _totals(server, out)  # the start-up probe's request set aside
        answer = requests.post(
            f"http://127.0.0.1:{port}/cds-services/back-spasm-order-select", json=json.loads(ORDER.read_text())
        )
        assert answer.status_code == 200 and answer.json()["cards"]
        figures = _totals(server, out)
        expected = [stage for stage, _, _ in STAGES] + [ROUTE, APP]
        assert {stage: figures["counts"].get(stage) for stage in expected} == dict.fromkeys(expected, 1)
        assert all(figures["seconds"][stage] > 0 for stage in expected)
        # The card record is written up to 20 ms later, into these totals or the next: not asked.
        assert not set(_totals(server, out)["counts"]) & set(expected)
    finally:
        server.terminate()
        server.wait(timeout=30)
