"""The HTTP front of ``cds-service serve`` over raw sockets: what a connection may cost the server
before anyone is authenticated (head size, read times, connections), and that what goes wrong on a
connection is the client's doing, answered so that a pooled client is never left guessing.

One ``serve`` process for the module, with second-long timeouts so the tests stay fast; its log
lines are collected as it runs."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import pytest
import requests

from tests.conftest import FIXTURES, SELECT, Served
from tests.serving import free_port, launch, wait_until_listening

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MAX_HEADER_BYTES = 16 * 1024
# How much later than its deadline a refusal may come on a loaded test machine.
SLACK = 1.0


@dataclass
class Front:
    server: Popen[bytes]
    port: int
    lines: list[dict] = field(default_factory=list)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def logged(self, since: int = 0) -> list[dict]:
        time.sleep(0.2)  # lines written just now reach the reader
        return self.lines[since:]


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    directory: Path = tmp_path_factory.mktemp("front")
    server, port = launch(
        directory,
        CDS_AUTH_MODE="off",
        CDS_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        CDS_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
        CDS_KEEP_ALIVE_SECONDS="1",
        CDS_MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
        CDS_MAX_CONNECTIONS="40",
    )
    served = Front(server, port)

    def read() -> None:
        for raw in server.stdout:  # type: ignore[union-attr]
            try:
                served.lines.append(json.loads(raw))
            except ValueError:
                served.lines.append({"level": "?", "message": raw.decode(errors="replace")})

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_until_listening(server, port)
    yield served
    server.terminate()
    server.wait(timeout=10)
    reader.join(timeout=5)
    server.stdout.close()  # type: ignore[union-attr]


@dataclass
class Answer:
    status: int | None  # None: closed without an answer
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the start of the exchange until the server closed the connection


def answer(sock: socket.socket, started: float) -> Answer:
    """Everything the server sends until it closes the connection."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    seconds = time.monotonic() - started
    sock.close()
    if not data:
        return Answer(None, {}, b"", seconds)
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return Answer(int(status_line.split()[1]), headers, body, seconds)


def one_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response read off a connection that stays open (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


def trickle(sock: socket.socket, byte: bytes = b"x", every: float = 0.1) -> None:
    """Sends ``byte`` every ``every`` seconds, in the background, until the connection fails."""

    def run() -> None:
        try:
            for _ in range(int(30 / every)):
                sock.send(byte)
                time.sleep(every)
        except OSError:
            pass

    threading.Thread(target=run, daemon=True).start()


HOOK_HEAD = (
    f"POST {SELECT} HTTP/1.1\r\nHost: cds\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
).encode()


def errors_and_500s(front: Front, since: int) -> tuple[list[dict], str]:
    metrics = requests.get(front.url("/metrics"), timeout=5).text
    five_hundreds = "\n".join(line for line in metrics.splitlines() if 'status="500"' in line)
    return [line for line in front.logged(since) if line.get("level") == "ERROR"], five_hundreds


def silent(front: Front) -> Answer:
    return answer(front.connect(), time.monotonic())


def trickled_head(front: Front) -> Answer:
    started = time.monotonic()
    sock = front.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cds\r\nX-Slow: ")
    trickle(sock)
    return answer(sock, started)


def slow_body(front: Front) -> Answer:
    started = time.monotonic()
    sock = front.connect()
    sock.sendall(HOOK_HEAD + b'{"hook": ')
    trickle(sock, b" ")
    return answer(sock, started)


def trickled_second_head(front: Front) -> Answer:
    """A kept-alive connection's next request, its head trickled after the first was answered."""
    sock = front.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cds\r\n\r\n")
    assert one_response(sock)[0] == 200
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cds\r\nX-Slow: ")
    trickle(sock)
    return answer(sock, started)


def idle_after_an_answer(front: Front) -> Answer:
    sock = front.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cds\r\n\r\n")
    assert one_response(sock)[0] == 200
    return answer(sock, time.monotonic())


@pytest.fixture(scope="module")
def timed_out(front: Front) -> Iterator[dict[str, Future[Answer]]]:
    """The exchanges that last until a timeout ends them, all started at once: the module waits
    about one timeout for them, not one each."""
    with ThreadPoolExecutor(5) as pool:
        exchanges = (silent, trickled_head, slow_body, idle_after_an_answer, trickled_second_head)
        yield {exchange.__name__: pool.submit(exchange, front) for exchange in exchanges}


def test_a_silent_connection_is_closed_after_the_header_timeout(timed_out: dict[str, Future[Answer]]) -> None:
    closed = timed_out["silent"].result(timeout=30)
    assert closed.status is None  # nothing asked, nothing answered
    assert HEADER_TIMEOUT - 0.1 <= closed.seconds <= HEADER_TIMEOUT + SLACK


def test_a_trickled_head_is_cut_with_408_after_the_header_timeout(timed_out: dict[str, Future[Answer]]) -> None:
    cut = timed_out["trickled_head"].result(timeout=30)
    assert cut.status == 408 and cut.headers["connection"] == "close"
    assert cut.seconds <= HEADER_TIMEOUT + SLACK
    assert cut.headers["content-type"] == "application/fhir+json"
    assert json.loads(cut.body)["issue"][0]["code"] == "timeout"


def test_a_kept_alive_connections_next_head_has_the_header_timeout_too(timed_out: dict[str, Future[Answer]]) -> None:
    """uvicorn's keep-alive timer stops at the next request's first byte: without a deadline of
    its own from there, a head trickled on a kept-alive connection held it for ever."""
    cut = timed_out["trickled_second_head"].result(timeout=30)
    assert cut.status == 408 and cut.headers["connection"] == "close"
    assert "head was not received" in json.loads(cut.body)["issue"][0]["diagnostics"]


def test_a_slowly_sent_body_is_cut_with_408_and_is_not_an_error(
    front: Front, timed_out: dict[str, Future[Answer]]
) -> None:
    cut = timed_out["slow_body"].result(timeout=30)
    assert cut.status == 408 and cut.headers["connection"] == "close"
    assert "body was not received" in json.loads(cut.body)["issue"][0]["diagnostics"]
    assert cut.seconds <= BODY_TIMEOUT + SLACK
    errors, five_hundreds = errors_and_500s(front, 0)
    assert errors == [] and five_hundreds == ""


def test_a_kept_alive_connection_is_closed_after_the_keep_alive_timeout(timed_out: dict[str, Future[Answer]]) -> None:
    idle = timed_out["idle_after_an_answer"].result(timeout=30)
    assert idle.status is None and 0.9 <= idle.seconds <= 1 + SLACK


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"X-Big: " + b"a" * 1024 * 1024 + b"\r\n", id="one 1 MB header"),
        pytest.param(b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(40)), id="forty 1 kB headers"),
        pytest.param(b"", id="a 1 MB URL"),
    ],
)
def test_a_request_head_over_the_limit_is_refused_with_431_at_once(front: Front, head: bytes) -> None:
    path = b"/healthz" if head else b"/healthz?" + b"q" * 1024 * 1024
    started = time.monotonic()
    sock = front.connect()
    # The server may close its side before all of it is sent; its answer is still read.
    with contextlib.suppress(OSError):
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: cds\r\n" + head + b"\r\n")
    refused = answer(sock, started)
    assert refused.status == 431
    assert refused.headers["connection"] == "close"
    [issue] = json.loads(refused.body)["issue"]
    assert issue["diagnostics"].startswith("the request head is over") and issue["code"] == "too-long"
    assert refused.seconds < HEADER_TIMEOUT  # answered, not ended by the timeout (the linger drains what is in flight)
    assert "server" not in refused.headers  # the front's own answers name no server either


def test_a_head_over_the_limit_sent_with_its_body_is_431_not_a_parse_error(front: Front) -> None:
    """The body behind a refused head is not read as a request's: it was handed to a request that
    was never made, and the parser's error answered 400 "Invalid HTTP request" instead."""
    head = f"POST {SELECT} HTTP/1.1\r\nHost: cds\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    sock = front.connect()
    with contextlib.suppress(OSError):
        sock.sendall(head.encode() + b"X-Big: " + b"a" * 2 * MAX_HEADER_BYTES + b"\r\n\r\n{}")
    assert answer(sock, time.monotonic()).status == 431


def test_a_kept_alive_connections_next_head_over_the_limit_is_refused_with_431(front: Front) -> None:
    """Each request's head is bounded, not only a connection's first: a second head sent without
    its end was read on until the header timeout, not refused as its bytes came."""
    sock = front.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cds\r\n\r\n")
    assert one_response(sock)[0] == 200
    with contextlib.suppress(OSError):
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cds\r\nX-Big: " + b"a" * 2 * MAX_HEADER_BYTES)
    refused = answer(sock, time.monotonic())
    assert refused.status == 431
    assert json.loads(refused.body)["issue"][0]["diagnostics"].startswith("the request head is over")


def test_a_head_of_exactly_the_limit_is_served_and_one_byte_more_is_not(front: Front) -> None:
    """The limit counts the URL and each header line (name, value, ": " and line end): a head of
    exactly CDS_MAX_HEADER_BYTES is served."""
    fixed = len("/healthz") + len("Host") + len("cds") + 4 + len("X-Pad") + 4
    for padding, status in ((MAX_HEADER_BYTES - fixed, 200), (MAX_HEADER_BYTES - fixed + 1, 431)):
        sock = front.connect()
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cds\r\nX-Pad: " + b"p" * padding + b"\r\n\r\n")
        assert one_response(sock)[0] == status, padding
        sock.close()


def test_a_head_a_little_under_the_limit_is_served(front: Front) -> None:
    big = {"X-Padding": "p" * (MAX_HEADER_BYTES - 1024)}
    served = requests.get(front.url("/healthz"), headers=big, timeout=5)
    assert served.status_code == 200
    assert "server" not in served.headers  # no banner of the software behind the service


def abandoned(front: Front) -> float:
    """Hook calls counted as abandoned by their client (status 499) so far."""
    metrics = requests.get(front.url("/metrics"), timeout=5).text
    prefix = 'cds_requests_total{route="/cds-services/{service_id}",status="499"} '
    return sum(float(line.removeprefix(prefix)) for line in metrics.splitlines() if line.startswith(prefix))


def test_a_client_that_disconnects_mid_body_is_neither_a_500_nor_an_error(front: Front) -> None:
    since, before = len(front.logged()), abandoned(front)
    for _ in range(3):
        sock = front.connect()
        sock.sendall(HOOK_HEAD + b'{"hook": "order-select", ')
        time.sleep(0.05)
        sock.close()
    errors, five_hundreds = errors_and_500s(front, since)
    assert errors == [] and five_hundreds == ""
    assert abandoned(front) == before + 3


def test_healthz_keeps_answering_while_slow_clients_hold_connections(front: Front) -> None:
    """Four trickling heads, four silent connections and four 32 MB heads sent at once (read whole,
    these stalled the event loop for about two seconds)."""
    held = [front.connect() for _ in range(8)]
    for sock in held[:4]:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cds\r\nX-Slow: ")
        trickle(sock, every=0.05)

    big = b"GET /healthz HTTP/1.1\r\nHost: cds\r\nX-Big: " + b"a" * 32 * 1024 * 1024 + b"\r\n\r\n"

    def flood() -> None:
        sock = front.connect()
        with contextlib.suppress(OSError):
            sock.sendall(big)
        answer(sock, time.monotonic())

    floods = [threading.Thread(target=flood) for _ in range(4)]
    for thread in floods:
        thread.start()
    latencies = []
    with requests.Session() as session:
        for _ in range(20):
            started = time.monotonic()
            assert session.get(front.url("/healthz"), timeout=5).status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)
    for thread in floods:
        thread.join(timeout=5)
    for sock in held:
        sock.close()
    print(
        f"/healthz while 12 slow clients: max {max(latencies) * 1000:.1f} ms, median {sorted(latencies)[10] * 1000:.1f} ms"
    )
    assert max(latencies) < HEADER_TIMEOUT  # none waited for the slow clients to be cut (idle machine: ~10 ms)


def test_connections_beyond_the_cap_are_refused_at_once_and_others_served_again_after(front: Front) -> None:
    held = [front.connect() for _ in range(45)]  # the cap is 40
    time.sleep(0.1)
    refused = answer(front.connect(), time.monotonic())
    assert refused.status == 503 and refused.seconds < HEADER_TIMEOUT  # not held until a slot frees
    for sock in held:
        sock.close()
    time.sleep(0.1)
    assert requests.get(front.url("/healthz"), timeout=5).status_code == 200


@pytest.mark.serve(CDS_AUTH_MODE="off", CDS_MAX_CONNECTIONS="2")
def test_as_many_connections_as_the_cap_are_served_and_one_more_is_refused(served: Served) -> None:
    """CDS_MAX_CONNECTIONS=2 holds two connections, each served: uvicorn's own limit, set to the
    same number, counted the connection asking among them and answered the second one 503."""
    server, port = served
    time.sleep(0.2)  # the start-up probe's connection, closed, is gone from the server's count
    healthz = b"GET /healthz HTTP/1.1\r\nHost: cds\r\n\r\n"
    try:
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        for sock in held:
            sock.sendall(healthz)
            assert one_response(sock)[0] == 200
        refused = answer(socket.create_connection(("127.0.0.1", port), timeout=10), time.monotonic())
        assert refused.status == 503
        for sock in held:
            sock.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_after_a_4xx_the_connection_carries_the_next_request(front: Front) -> None:
    sock = front.connect()
    sock.sendall(
        f"POST {SELECT} HTTP/1.1\r\nHost: cds\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{{}}".encode()
    )
    status, headers, _ = one_response(sock)
    assert status == 415 and "connection" not in headers
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cds\r\n\r\n")
    status, _, body = one_response(sock)
    assert status == 200 and json.loads(body) == {"status": "ok"}
    sock.close()


def test_an_answer_before_the_body_is_read_says_connection_close(front: Front) -> None:
    """A 413 for a declared length the service will not read: the rest of that body would be
    taken for the next request, so the connection ends, and says so."""
    started = time.monotonic()
    sock = front.connect()
    sock.sendall(
        f"POST {SELECT} HTTP/1.1\r\nHost: cds\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n".encode()
    )
    refused = answer(sock, started)
    assert refused.status == 413 and refused.headers["connection"] == "close"
    assert refused.seconds < BODY_TIMEOUT  # answered at once, not when the unsent body timed out


def no_app() -> None:
    """A worker's app that cannot start, as ``app_from_environment`` ends one (uvicorn's code)."""
    raise SystemExit(3)


def test_serve_with_workers_that_cannot_start_stops_with_a_failed_start() -> None:
    """uvicorn's parent stops when a worker's start fails; the process says it did not start (3),
    as one process does, so a supervisor restarts it (with its back-off), not a clean stop (0)."""
    start = (
        "from cds_service.serving import FrontLimits, run; "
        f"run('tests.test_http_front:no_app', limits=FrontLimits(), factory=True, workers=2, port={free_port()})"
    )
    # uvicorn's supervisor waits on the monotonic clock with a deadline the kernel keeps: under
    # libfaketime (the suite run on another date: `faketime '+400 days'`) a faked monotonic clock
    # put each half-second wait days away. The date is not what this test is about.
    real_monotonic = os.environ | {"DONT_FAKE_MONOTONIC": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    done = subprocess.run(
        [sys.executable, "-c", start],
        capture_output=True,
        text=True,
        cwd=FIXTURES.parent,
        env=real_monotonic,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr[-3000:]
