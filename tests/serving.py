"""HTTP over a real socket: ``cds-service serve`` processes, for the tests about the process itself
(workers, signals, start-up errors, its logs), and uvicorn in a thread of the test process, for
tests that only need a socket (client processes calling the service)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import uvicorn

CLI = [sys.executable, "-m", "cds_service"]


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different ports free on loopback (each held until all are found)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def launch(tmp_path: Path, *args: str, port: int | None = None, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    """``cds-service serve`` on ``port`` (default: a free one) with only the given CDS_ settings,
    its output (stdout and stderr) piped; returns at once."""
    port = port or free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    server = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env={**clean, "CDS_DATA_DIR": str(tmp_path), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return server, port


def stopped(server: subprocess.Popen[bytes], *, interrupt: bool = False, within: float = 30) -> tuple[int, str]:
    """Its exit code and output, once stopped (by SIGINT first if ``interrupt``; killed after
    ``within`` seconds: a hang is a failure)."""
    if interrupt and server.poll() is None:
        server.send_signal(signal.SIGINT)
    try:
        code = server.wait(timeout=within)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return code, server.stdout.read().decode()  # type: ignore[union-attr]


def wait_until_listening(server: subprocess.Popen[bytes], port: int) -> None:
    """Returns once ``server`` answers on ``port``, or has exited."""
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/cds-services", timeout=2)
            return
        except requests.ConnectionError:
            if server.poll() is not None:
                return
            assert time.monotonic() < deadline, "the service did not start within 60 s"
            time.sleep(0.05)


def serve(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    """``cds-service serve`` on a free port with only the given CDS_ settings; waits until it listens."""
    server, port = launch(tmp_path, *args, port=None, **env)
    wait_until_listening(server, port)
    return server, port


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port, in a thread of this process, lifespan
    and all; yields its base URL and stops it on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive(), "the service stopped while starting"
            assert time.monotonic() < deadline, "the service did not start within 60 s"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
