"""Where ``cds-service serve`` listens: every address its ``--host`` names, each as asyncio would
bind it (an IPv6 socket takes IPv6 alone), and the start-up line naming what was bound."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
import uvicorn

from cds_service.serving import FrontLimits, run
from tests.serving import free_port, launch, stopped


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")


def _answers(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            assert requests.get(url, timeout=2).status_code == 200
            return
        except requests.ConnectionError:
            assert server.poll() is None, "the service stopped"
            assert time.monotonic() < deadline, "the service did not start within 60 s"
            time.sleep(0.05)


def _refused(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) != 0


@needs_ipv6
def test_all_ipv6_addresses_take_ipv6_alone(tmp_path: Path) -> None:
    """``--host ::`` is IPv6's any address, as asyncio binds it (IPV6_V6ONLY): the port pre-bound
    by the CLI had taken IPv4 too."""
    port = free_port()
    server, _ = launch(tmp_path, "--host", "::", port=port, CDS_AUTH_MODE="off")
    try:
        _answers(f"http://[::1]:{port}/healthz", server)
        assert _refused("127.0.0.1", port)
    finally:
        _, output = stopped(server, interrupt=True)
    assert f"bound to [::]:{port};" in output, output[-3000:]


def test_a_host_name_is_bound_at_each_of_its_addresses_and_named_by_them(tmp_path: Path) -> None:
    """``localhost`` is bound at every address it resolves to (both loopbacks where /etc/hosts
    says so), each named in the start-up line: it had been bound at its IPv4 address alone."""
    resolved = {info[4][0] for info in socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)}
    port = free_port()
    server, _ = launch(tmp_path, "--host", "localhost", port=port, CDS_AUTH_MODE="off")
    try:
        for address in resolved:
            _answers(f"http://{f'[{address}]' if ':' in address else address}:{port}/healthz", server)
    finally:
        _, output = stopped(server, interrupt=True)
    for address in resolved:
        assert (f"[{address}]:{port}" if ":" in address else f"{address}:{port}") in output, output[-3000:]
    assert f"localhost:{port}" not in output.split("bound to", 1)[1].split("\n", 1)[0], output[-3000:]


@needs_ipv6
def test_an_ipv6_address_already_taken_is_said_once_bracketed(tmp_path: Path) -> None:
    """The one-line failed start names an IPv6 address once bracketed."""
    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server, _ = launch(tmp_path, "--host", "::1", port=port, CDS_AUTH_MODE="off")
        code, output = stopped(server)
    assert code == 3, output[-3000:]
    assert f"cds-service: cannot listen on [::1]:{port}: Address already in use\n" in output, output[-3000:]


def test_a_bracketed_host_is_not_bracketed_again(tmp_path: Path) -> None:
    port = free_port()
    server, _ = launch(tmp_path, "--host", "[::1]", port=port, CDS_AUTH_MODE="off")
    code, output = stopped(server)
    assert code == 3, output[-3000:]
    assert f"cds-service: cannot listen on [::1]:{port}: " in output, output[-3000:]


def test_port_0_is_named_by_the_port_the_system_gave(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``run`` on port 0 (the tests' and an embedder's): the line names the port had, not ``:0``."""
    had: list[int] = []

    def started(self: uvicorn.Server, sockets: list[socket.socket]) -> None:
        had.extend(sock.getsockname()[1] for sock in sockets)
        self.started = True

    monkeypatch.setattr("uvicorn.Server.run", started)
    with caplog.at_level(logging.INFO, logger="cds_service.serving"):
        run(_no_app, limits=FrontLimits(), host="127.0.0.1", port=0, workers=1, log_config=None)
    said = [record.getMessage() for record in caplog.records if record.getMessage().startswith("bound to")]
    assert len(had) == 1 and had[0] != 0
    assert said == [f"bound to 127.0.0.1:{had[0]}; served once started (Ctrl-C stops it)"]


async def _no_app(scope: object, receive: object, send: object) -> None:
    """Never started: ``uvicorn.Server.run`` is the test's."""
