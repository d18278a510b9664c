"""The HTTP front of ``cds-service serve``: uvicorn, with the limits a server facing a network needs.

uvicorn reads a request head of any size, keeps a connection that sends nothing (or one byte a
minute) open for ever, and waits for a slowly sent body as long as it takes: before a caller is
authenticated, anyone who can reach the port could hold every file descriptor or stall the event
loop. ``FrontProtocol`` is uvicorn's httptools protocol with those holes closed:

- a request head over ``max_header_bytes`` is answered 431 as soon as that many bytes came;
- a head not received within ``header_timeout`` seconds of the connection (or of its first
  byte, on a kept-alive connection) is answered 408, or closed unanswered if nothing came;
- a body not received within ``body_timeout`` seconds of its head is answered 408;
- beyond ``max_connections`` open connections a new one is answered 503 and closed at once;
- every 5xx, and every answer given before its request's body was read, says ``Connection:
  close`` (the connection cannot carry another request), so a pooled client never sends its next
  request into a connection the server is closing.

A refused connection is answered, then half-closed and drained for a moment before it is
closed, so the client reads the answer rather than a reset. The limits travel in ``FrontConfig``
(a uvicorn ``Config``), which worker processes receive whole.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import uvicorn
from uvicorn.main import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from cds_service.errors import operation_outcome

log = logging.getLogger(__name__)

# How long a refused connection is drained (its answer sent, reading discarded) before it is closed.
LINGER_SECONDS = 1.0


@dataclass(frozen=True)
class FrontLimits:
    """What one connection may cost the server; the defaults are those of ``Settings``."""

    max_header_bytes: int = 32 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive: float = 5.0
    max_connections: int = 256


class FrontConfig(uvicorn.Config):
    """uvicorn's configuration, with the front's limits and protocol."""

    def __init__(self, app: Any, *, limits: FrontLimits, **options: Any) -> None:
        super().__init__(
            app,
            http=FrontProtocol,
            ws="none",  # no WebSocket route: an upgrade request is served as plain HTTP
            timeout_keep_alive=limits.keep_alive,  # type: ignore[arg-type]  # a float works: call_later
            # uvicorn answers a request 503 once as many connections as its limit are open, counting
            # the one asking: one more, so that ``max_connections`` are served and the front refuses
            # the next; requests in progress (one per connection) stay bounded by it too.
            limit_concurrency=limits.max_connections + 1,
            # Access lines carry the URL and its query string: the service logs its own (no query).
            access_log=False,
            server_header=False,  # no banner of the software behind the service
            **options,
        )
        self.limits = limits


class CannotListen(Exception):
    """The port is taken (or the host is not this machine's): ``cds-service`` says so in one line
    and exits 3, a failed start, for its supervisor to retry."""


def run(app: Any, *, limits: FrontLimits, before_workers: Callable[[], None] | None = None, **options: Any) -> None:
    """``uvicorn.run`` with the front: ``app`` is the app, or with ``workers`` > 1 its import string.
    ``CannotListen`` before the app starts if its port cannot be had; ``before_workers`` is called
    once it is had, before workers start."""
    config = FrontConfig(app, limits=limits, **options)
    sockets = _bound(config)
    server = uvicorn.Server(config)
    supervisor = Multiprocess(config, sockets=sockets) if config.workers > 1 else None
    stopped = False
    try:
        if supervisor is not None:
            if before_workers is not None:
                before_workers()
            supervisor.run()
        else:
            _run_stopped_by_sigterm_as_by_ctrl_c(server, sockets)
    except KeyboardInterrupt:
        stopped = True  # a stop asked for, before the app had started too: not a failed start
    finally:
        for sock in sockets:  # closed once served (uvicorn's shutdown), or never listened on
            sock.close()
    if supervisor is None:
        failed = not server.started and not stopped  # its app's start failed
    else:  # a worker could not start, and uvicorn's parent stopped: not a clean stop
        failed = any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes)
    if failed:
        sys.exit(STARTUP_FAILURE)


def _run_stopped_by_sigterm_as_by_ctrl_c(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
    """One process's server, SIGTERM a clean stop (exit 0) as SIGINT is and as ``--workers``'
    supervisor makes it. uvicorn stops gracefully on either, then raises the signal again under the
    handler it found: SIGTERM's default ended the process by the signal (143 to a shell, "Error" to
    Kubernetes, a failure to docker-compose's ``restart: on-failure``), SIGINT's raises
    ``KeyboardInterrupt``. Given SIGINT's handler, SIGTERM ends it as Ctrl-C does."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.run(sockets=sockets)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bound(config: uvicorn.Config) -> list[socket.socket]:
    """The service's sockets, bound before any app starts, one process or workers alike: one per
    address ``host`` names (a name's every address), as asyncio's ``create_server`` binds them
    (an IPv6 socket takes IPv6 alone). uvicorn bound one process's after its app's start:
    "Application startup complete", then the bind's error (an operator's review); and its own
    bind names no address when it fails."""
    try:
        addresses = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:  # a host name that names nothing
        raise CannotListen(f"cannot listen on {_where(config.host, config.port)}: {error.strerror}") from None
    port = config.port
    sockets: list[socket.socket] = []
    for family, kind, proto, _, address in dict.fromkeys(addresses):
        host = str(address[0])
        sock = socket.socket(family, kind, proto)
        sockets.append(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((host, port, *address[2:]))
        except OSError as error:
            for bound in sockets:
                bound.close()
            raise CannotListen(f"cannot listen on {_where(host, port)}: {error.strerror or error}") from None
        port = sock.getsockname()[1]  # port 0: the one the first was given, for the others too
        sock.set_inheritable(True)  # the workers' too
    where = ", ".join(_where(*sock.getsockname()[:2]) for sock in sockets)
    log.info("bound to %s; served once started (Ctrl-C stops it)", where)
    return sockets


def _where(host: str, port: int) -> str:
    """``host:port``, an IPv6 address bracketed (once: ``--host [::1]`` is named as given)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _answer(status: int, message: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    body = orjson.dumps(operation_outcome(message, issue_code="too-long" if status == 431 else "timeout"))
    head = [STATUS_LINE[status]]
    head += [name + b": " + value + b"\r\n" for name, value in default_headers]
    head += [
        b"content-type: application/fhir+json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + body


class FrontProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, bounded in head size, read times and connections (module doc)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: FrontLimits = getattr(config, "limits", FrontLimits())
        self.deadline: asyncio.TimerHandle | None = None
        self.head_bytes = 0  # bytes of the request head received so far
        self.in_head = True  # what arrives now is a request head (not yet complete)
        self.oversized = False  # the head just parsed is over the limit: no app for it
        self.refused = False  # answered by the front: what arrives is drained, not parsed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            log.warning(
                "connection refused: %d open, the most is %d", len(self.connections) - 1, self.limits.max_connections
            )
            self.transport.write(b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
            self.transport.close()
            return
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.in_head:
            self.head_bytes += len(data)
        super().data_received(data)
        if not self.refused and (self.oversized or (self.in_head and self.head_bytes > self.limits.max_header_bytes)):
            self._refuse(431, f"the request head is over {self.limits.max_header_bytes} bytes, the most accepted")

    # httptools' callbacks, in the order a request arrives

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.deadline is None:  # a kept-alive connection's next request: its head starts now
            self._arm(self.limits.header_timeout, self._head_timed_out)

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self.oversized = True  # no app for it: data_received answers once the parser returns
            return
        self.in_head = False
        self._arm(self.limits.body_timeout, self._body_timed_out)
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle.scope is not self.scope:  # no cycle of its own: nothing to answer
            return
        send = cycle.send

        async def send_saying_close(message: Any) -> None:
            """A 5xx, or an answer before the body is in: the connection carries no other request."""
            if message["type"] == "http.response.start" and (message["status"] >= 500 or cycle.more_body):
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"connection" for name, _ in headers):
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        cycle.send = send_saying_close  # type: ignore[method-assign]

    def on_body(self, body: bytes) -> None:
        if not (self.oversized or self.refused):
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.oversized or self.refused:
            return
        self._disarm()
        super().on_message_complete()
        self.in_head, self.head_bytes = True, 0

    # Deadlines and refusals

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _head_timed_out(self) -> None:
        self.deadline = None
        if self.head_bytes == 0:  # nothing came: no request to answer
            log.debug("idle connection closed after %s s", self.limits.header_timeout)
            self.transport.close()
        else:
            self._refuse(408, f"the request head was not received within {self.limits.header_timeout} s")

    def _body_timed_out(self) -> None:
        self.deadline = None
        self._refuse(408, f"the request body was not received within {self.limits.body_timeout} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` (unless the app already answered), then drain and close."""
        if self.refused:
            return
        self.refused = True
        self._disarm()
        log.info("request refused with %d: %s", status, message)
        answered = False
        if self.cycle is not None and not self.cycle.response_complete and not self.in_head:
            answered = self.cycle.response_started
            self.cycle.disconnected = True  # the app reads a disconnect and its answer is dropped
            self.cycle.message_event.set()
        if self.transport.is_closing():
            return
        if not answered:
            self.transport.write(_answer(status, message, self.server_state.default_headers))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self.deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)
