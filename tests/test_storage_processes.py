"""Several processes on one database: a feedback session from several processes counted exactly,
instances starting together migrating it once, two workers both answering, and their log lines
told apart."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from cds_service.app import create_app
from cds_service.pipeline.knowledge import Knowledge
from cds_service.settings import Settings
from tests.conftest import NOON, SELECT, Clock, fixture, settings_in
from tests.serving import serve, serve_in_thread

SESSION = Path(__file__).resolve().parent.parent / "scripts" / "feedback_session.py"


@contextmanager
def _service(
    tmp_path: Path, workers: int, database_url: str, knowledge_for: Callable[[Settings], Knowledge | None]
) -> Iterator[str]:
    """The service on ``database_url``, authentication off; yields its base URL. Several workers
    are ``cds-service serve --workers`` processes; one is the app in a thread of this process."""
    if workers > 1:
        server, port = serve(
            tmp_path,
            "--workers",
            str(workers),
            CDS_AUTH_MODE="off",
            CDS_DATABASE_URL=database_url,
            CDS_LOG_LEVEL="WARNING",
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)
        return
    settings = settings_in(tmp_path).model_copy(update={"database_url": database_url})
    app = create_app(settings, knowledge=knowledge_for(settings), clock=Clock(NOON))
    try:
        with serve_in_thread(app) as base:
            yield base
    finally:
        app.state.runtime.store.engine.dispose()


@pytest.mark.parametrize(("backend", "workers"), [("postgresql", 4), ("sqlite", 1)])
def test_a_session_from_several_processes_is_counted_exactly(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    knowledge_for: Callable[[Settings], Knowledge | None],
    backend: str,
    workers: int,
) -> None:
    """Hook calls and feedback (some resent) from 4 client processes, answered by ``workers``
    service processes sharing one database: nothing lost, nothing counted twice."""
    url = request.getfixturevalue("postgresql_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/cds.db"
    with _service(tmp_path, workers, url, knowledge_for) as base:
        assert requests.get(f"{base}/readyz", timeout=10).status_code == 200
        run = subprocess.run(
            [sys.executable, str(SESSION), "--url", base, "--calls", "150", "--feedback", "60"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["match"] and result["feedback_sent"] == 66
    reported = result["reported"]
    assert len(reported) >= 10
    assert sum(r["accepted"] for r in reported.values()) > 0
    assert sum(r["overridden"] for r in reported.values()) > 0
    assert sum(r["issued"] for r in reported.values()) == result["cards"]


def test_two_instances_starting_together_migrate_one_database_once(
    tmp_path: Path, postgresql_url: str, knowledge_for: Callable[[Settings], Knowledge | None]
) -> None:
    """Containers behind a load balancer start at the same time against one fresh database: two
    instances (each its own engine and connections) started at the same instant from two threads."""
    together = threading.Barrier(2)

    def start(i: int) -> Any:
        # Each its own data directory, one key for both (docs/operations.md, More processes).
        shared = {"database_url": postgresql_url, "patient_id_key": SecretStr("one-key-for-every-process")}
        settings = settings_in(tmp_path / str(i)).model_copy(update=shared)
        together.wait(timeout=30)
        return create_app(settings, knowledge=knowledge_for(settings), clock=Clock(NOON))

    with ThreadPoolExecutor(2) as pool:
        started = list(pool.map(start, range(2)))
    try:
        with TestClient(started[0]) as first, TestClient(started[1]) as second:
            for client in (first, second):
                ready = client.get("/readyz")
                assert ready.json()["checks"]["database"] == "ok, schema version 15"
    finally:
        for app in started:
            app.state.runtime.store.engine.dispose()
    engine = create_engine(postgresql_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM schema_version")).scalar() == 1
    engine.dispose()


def _workers(supervisor: int) -> list[int]:
    """The worker processes uvicorn spawned (its multiprocessing helpers excluded)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_two_workers_both_answer_hook_calls(tmp_path: Path, postgresql_url: str) -> None:
    """``serve --workers 2``: both processes take hook calls, each answers them right, and the
    cards both issued land in the one database."""
    server, port = serve(
        tmp_path, "--workers", "2", CDS_AUTH_MODE="off", CDS_DATABASE_URL=postgresql_url, CDS_LOG_LEVEL="WARNING"
    )
    base = f"http://127.0.0.1:{port}"
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    try:
        workers = _workers(server.pid)
        assert len(workers) == 2
        before = {pid: _cpu_ticks(pid) for pid in workers}
        with ThreadPoolExecutor(8) as pool:  # a connection per call, so the kernel spreads them
            answers = list(pool.map(lambda _: requests.post(f"{base}{SELECT}", json=request, timeout=30), range(200)))
        busy = {pid: _cpu_ticks(pid) - before[pid] for pid in workers}
        assert all(ticks > 0 for ticks in busy.values()), busy
        assert {a.status_code for a in answers} == {200}
        assert {tuple(c["source"]["topic"]["code"] for c in a.json()["cards"]) for a in answers} == {
            ("cyclobenzaprine-duration",)
        }
        issued = 0
        for _ in range(50):  # each card is written just after its response
            issued = requests.get(f"{base}/analytics", timeout=10).json()["totals"]["cards_shown"]
            if issued == len(answers):
                break
            time.sleep(0.1)
        assert issued == len(answers)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_each_worker_says_its_own_process_id_on_every_log_line(tmp_path: Path, postgresql_url: str) -> None:
    """``serve --workers 2``: the supervisor's and the workers' lines interleave on one standard
    error, and could not be told apart (an operator's review). Each line carries the pid of the
    process that wrote it: uvicorn's start line, which names it, says so for each worker."""
    server, port = serve(tmp_path, "--workers", "2", CDS_AUTH_MODE="off", CDS_DATABASE_URL=postgresql_url)
    try:
        workers = _workers(server.pid)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    lines = [json.loads(line) for line in server.stdout.read().decode().splitlines()]  # type: ignore[union-attr]
    started = {line["pid"]: line["message"] for line in lines if line["message"].startswith("Started ")}
    assert started == {
        server.pid: f"Started parent process [{server.pid}]",
        **{pid: f"Started server process [{pid}]" for pid in workers},
    }
    assert {line["pid"] for line in lines} == {server.pid, *workers}
