"""``cds-service serve`` as a supervisor (systemd, Kubernetes, docker-compose) sees it, in one
process and with ``--workers``: what start-up says, a port already taken, and a stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from cds_service.serving import FrontLimits, run
from tests.serving import free_port, launch, serve, stopped, wait_until_listening

UNSET_ZONE = "CDS_TIMEZONE is not set"


@pytest.fixture(params=[1, 2], ids=["one-process", "workers"])
def mode(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """``serve``'s arguments and settings: one process on SQLite, or two workers on PostgreSQL."""
    if request.param == 1:
        return ()
    url = request.getfixturevalue("postgresql_url")
    return ("--workers", "2", f"CDS_DATABASE_URL={url}")


def _split(mode: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    args = [part for part in mode if "=" not in part]
    env = dict(part.split("=", 1) for part in mode if "=" in part)
    return args, {"CDS_AUTH_MODE": "off", **env}


def test_start_up_says_its_cautions_once_however_many_workers(tmp_path: Path, mode: tuple[str, ...]) -> None:
    """Said by each worker's start, N workers said each caution N times (an operator's review):
    the supervising process says them once, before its workers start."""
    args, env = _split(mode)
    server, port = serve(tmp_path, *args, **env)
    try:
        for _ in range(4):  # with workers, both have likely started: their start said nothing of them
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
    _, output = stopped(server)
    assert output.count("Application startup complete") == (2 if args else 1), output[-3000:]
    assert output.count(UNSET_ZONE) == 1, output[-3000:]
    assert output.count("AUTHENTICATION IS OFF") == 1, output[-3000:]


def test_a_port_in_use_stops_the_start_before_the_app_starts(tmp_path: Path, mode: tuple[str, ...]) -> None:
    """uvicorn bound its port after the app's start: "Application startup complete", then the bind
    error. Now one line naming where, and the failed start's exit code, before the app starts."""
    args, env = _split(mode)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server, _ = launch(tmp_path, *args, port=port, **env)
        code, output = stopped(server)
    assert code == 3, output[-3000:]
    assert f"cds-service: cannot listen on 127.0.0.1:{port}: Address already in use\n" in output, output[-3000:]
    assert "Waiting for application startup" not in output and "Started parent process" not in output


def test_sigterm_is_a_clean_stop_in_either_mode(tmp_path: Path, mode: tuple[str, ...]) -> None:
    """One process ended by SIGTERM itself (uvicorn raised it again once stopped: 143 to a shell),
    while ``--workers``' supervisor exited 0: a graceful stop reads as success in both."""
    args, env = _split(mode)
    server, port = launch(tmp_path, *args, **env)
    wait_until_listening(server, port)
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    server.send_signal(signal.SIGTERM)
    code, output = stopped(server)
    assert code == 0, output[-3000:]
    assert "Application shutdown complete" in output


def test_sigterm_before_uvicorn_takes_the_signals_is_a_stop_not_a_failed_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """One process: SIGTERM's handler is SIGINT's from the bind on, and uvicorn takes both only
    once its loop runs. A SIGTERM in between (a stop asked for as the port was had) exited 3, a
    failed start, for a supervisor to restart what it had been asked to stop; and the bound
    socket was left open."""
    bound: list[socket.socket] = []

    def signalled_before_uvicorn_started(self: object, sockets: list[socket.socket]) -> None:
        bound.extend(sockets)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal's KeyboardInterrupt ends this

    monkeypatch.setattr("uvicorn.Server.run", signalled_before_uvicorn_started)
    handler = signal.getsignal(signal.SIGTERM)
    run(_no_app, limits=FrontLimits(), host="127.0.0.1", port=free_port(), workers=1, log_config=None)
    assert signal.getsignal(signal.SIGTERM) == handler
    assert [sock.fileno() for sock in bound] == [-1]


async def _no_app(scope: object, receive: object, send: object) -> None:
    """Never started: ``uvicorn.Server.run`` is the test's."""


# uvicorn's supervisor handles a signal after a half-second wait on the monotonic clock, with a
# deadline the kernel keeps: under libfaketime (the suite run on another date: `faketime '+400
# days'`) the faked clock puts it days away and SIGHUP is never handled, and a real monotonic clock
# beside a faked wall clock makes the service's own sleeps fail (EINVAL). The date is not what
# this test is about; it runs on every real date.
@pytest.mark.skipif(
    "faketime" in os.environ.get("LD_PRELOAD", ""), reason="uvicorn's supervisor waits out no signal under libfaketime"
)
def test_workers_restarted_after_the_configuration_changed_say_its_warnings(
    tmp_path: Path, postgresql_url: str
) -> None:
    """uvicorn restarts ``--workers``' workers after a death, and all on SIGHUP; each reads the
    configuration again. Its warnings are said once by the supervisor: a file edited meanwhile
    (CDS_TIMEZONE removed) ran with no word. A worker whose warnings differ from those the
    supervisor said says its own; one whose are the same says nothing (the start-up test above)."""
    config = tmp_path / "config.toml"
    config.write_text('timezone = "Europe/Paris"\n')
    server, _ = launch(
        tmp_path, "--workers", "2", CDS_AUTH_MODE="off", CDS_DATABASE_URL=postgresql_url, CDS_CONFIG_FILE=str(config)
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.decode() for line in server.stdout), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        _wait_for(lines, "Application startup complete", 2)  # both workers read the file as it was
        config.write_text("")  # the site's time zone removed while the service runs
        server.send_signal(signal.SIGHUP)
        _wait_for(lines, "Application startup complete", 4)
    finally:  # a server that outlives its test holds database connections for every test after it
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        reader.join(timeout=30)
    output = "".join(lines)
    assert "restarting processes" in output, output[-3000:]
    assert output.count(UNSET_ZONE) == 2, output[-3000:]  # each restarted worker, none before
    assert output.count("AUTHENTICATION IS OFF") == 3, output[-3000:]  # with what else changed


def _wait_for(lines: list[str], text: str, count: int) -> None:
    """Returns once ``count`` of the lines read so far hold ``text`` (60 s at most)."""
    deadline = time.monotonic() + 60
    while sum(text in line for line in list(lines)) < count:
        assert time.monotonic() < deadline, f"not {count} times within 60 s: {text}\n{''.join(lines)[-3000:]}"
        time.sleep(0.1)


def test_sigterm_while_waiting_for_the_database_is_a_stop_not_a_failure(tmp_path: Path) -> None:
    """A stop asked for during start-up, before the port is bound (here: the database server
    accepted the connection and says nothing), exits 0 as one asked for later does: SIGTERM's
    default ended the process by the signal, 143 to a shell, a failure to a restart policy."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(60)
        url = f"postgresql+psycopg://cds@127.0.0.1:{silent.getsockname()[1]}/cds"
        server, _ = launch(tmp_path, CDS_AUTH_MODE="off", CDS_DATABASE_URL=url)
        connection, _ = silent.accept()  # start-up is waiting for the database's answer
        with connection:
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            code, output = stopped(server)
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
