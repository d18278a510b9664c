"""TCP proxies between a service and PostgreSQL, for tests that need the path between them to
misbehave: cut (``CuttableProxy``: reset, or partitioned) or, for one statement, slow
(``HoldingProxy``: the answer held while the test changes the database behind it); and one that
notes the names statements are prepared under (``WatchingProxy``)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

_PROTOCOL_3 = 196608  # the start-up message's protocol version; SSL and GSS requests come before it


@dataclass
class _Link:
    """One client's connection through the proxy, and what the proxy has seen of it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    held: bytearray | None = None  # the server's answers, while they are held back
    client: socket.socket | None = None  # where they go once released
    sent: bytearray = field(default_factory=bytearray)  # the client's bytes not yet read as messages
    started: bool = False  # past the start-up message: every message has a type byte
    prepared: dict[bytes, bytes] = field(default_factory=dict)  # a prepared statement's text, by name


class CuttableProxy:
    """A TCP proxy to PostgreSQL that the test can cut (reset or partition) and restore."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.mode = "up"
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.mode == "reset":
                _reset(client)
                continue
            with self._lock:
                self._sockets.add(client)
            if self.mode == "partition":
                continue  # accepted, and never answered
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets.add(server)
            link = _Link()
            for source, target, to_server in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(source, target, link, to_server), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, link: _Link, to_server: bool) -> None:
        try:
            while data := source.recv(65536):
                while self.mode == "partition":  # read, and held: the sender sees no error
                    time.sleep(0.01)
                self._forward(data, target, link, to_server)
        except OSError:
            pass
        for end in (source, target):
            _reset(end)

    def _forward(self, data: bytes, target: socket.socket, link: _Link, to_server: bool) -> None:
        target.sendall(data)

    def _reset_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for held in sockets:
            _reset(held)

    def cut(self, how: str) -> None:
        self.mode = how
        if how == "reset":
            self._reset_all()

    def restore(self) -> None:
        self._reset_all()  # a partition's connections come back dead, as after a firewall lost them
        self.mode = "up"

    def close(self) -> None:
        self.listener.close()
        self._reset_all()


class HoldingProxy(CuttableProxy):
    """A proxy that holds back the server's answer to one statement until ``release``: the
    statement has run (its snapshot taken) and the client has not had its rows, as on a slow
    network or a busy database."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(upstream)
        self.held = threading.Event()  # an answer is held
        self._marker: bytes | None = None
        self._holding: list[_Link] = []

    def hold(self, marker: bytes) -> None:
        """Hold the answer to the next statement whose text holds ``marker``: sent as text, or run
        by the name it was prepared under (psycopg prepares a statement run five times on a
        connection, and sends its text no more)."""
        self._marker = marker

    def release(self) -> None:
        with self._lock:
            holding, self._holding = self._holding, []
        for link in holding:
            with link.lock:
                held, link.held = link.held or bytearray(), None
                if held and link.client is not None:
                    link.client.sendall(held)

    def _forward(self, data: bytes, target: socket.socket, link: _Link, to_server: bool) -> None:
        with link.lock:
            texts = list(_statements(link, data)) if to_server else []
            marker = self._marker
            if to_server and marker is not None and (marker in data or any(marker in text for text in texts)):
                self._marker, link.held = None, bytearray()
                with self._lock:
                    self._holding.append(link)
            elif not to_server and link.held is not None:
                link.held += data
                link.client = target
                self.held.set()
                return
            target.sendall(data)


class WatchingProxy(CuttableProxy):
    """A proxy that notes the names statements are prepared under (the unnamed one is b"")."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(upstream)
        self.names: set[bytes] = set()

    def _forward(self, data: bytes, target: socket.socket, link: _Link, to_server: bool) -> None:
        if to_server:
            with link.lock:
                for _ in _statements(link, data):
                    pass
                self.names.update(link.prepared)
        target.sendall(data)


def _reset(end: socket.socket) -> None:
    try:
        end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Wakes the thread reading it: closed under that thread, the socket lived on and the server's
        # session stayed "idle in transaction", holding its locks (once ~15 minutes).
        end.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    end.close()


def _statements(link: _Link, data: bytes) -> Iterator[bytes]:
    """The text of each statement the client's ``data`` runs or prepares, as PostgreSQL's protocol
    frames it: a simple query's, a Parse's (kept by its name) and a Bind's (its statement's)."""
    link.sent += data
    while True:
        if not link.started:  # untyped: the SSL or GSS request, then the start-up message
            if len(link.sent) < 8:
                return
            length, code = struct.unpack("!ii", link.sent[:8])
            if length < 8 or len(link.sent) < length:
                return
            del link.sent[:length]
            link.started = code == _PROTOCOL_3
            continue
        if len(link.sent) < 5:
            return
        length = struct.unpack("!i", link.sent[1:5])[0]
        if length < 4 or len(link.sent) < 1 + length:
            return
        kind, body = link.sent[:1], bytes(link.sent[5 : 1 + length])
        del link.sent[: 1 + length]
        if kind == b"Q":
            yield body
        elif kind == b"P":
            name, _, rest = body.partition(b"\0")
            link.prepared[name] = rest.partition(b"\0")[0]
            yield link.prepared[name]
        elif kind == b"B":
            statement = body.partition(b"\0")[2].partition(b"\0")[0]
            yield link.prepared.get(statement, b"")
