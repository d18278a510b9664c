"""Real ``cds-service serve`` processes for tests that need HTTP over a socket (workers, logs, auth)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

CLI = [sys.executable, "-m", "cds_service"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    """``cds-service serve`` on a free port with only the given CDS_ settings; waits until it listens."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    server = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env={**clean, "CDS_DATA_DIR": str(tmp_path), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/cds-services", timeout=2)
            return server, port
        except requests.ConnectionError:
            if server.poll() is not None:
                return server, port
            assert time.monotonic() < deadline, "the service did not start within 60 s"
            time.sleep(0.2)
