"""TCP proxies between a service and PostgreSQL, for tests that need the path between them to
misbehave: cut (``CuttableProxy``: reset, or partitioned) or, for one statement, slow
(``HoldingProxy``: the answer held while the test changes the database behind it)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, field


@dataclass
class _Link:
    """One client's connection through the proxy, and what the proxy has seen of it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    held: bytearray | None = None  # the server's answers, while they are held back
    client: socket.socket | None = None  # where they go once released


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
        """Hold the answer to the next statement whose text holds ``marker``."""
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
            if to_server and self._marker is not None and self._marker in data:
                self._marker, link.held = None, bytearray()
                with self._lock:
                    self._holding.append(link)
            elif not to_server and link.held is not None:
                link.held += data
                link.client = target
                self.held.set()
                return
            target.sendall(data)


def _reset(end: socket.socket) -> None:
    try:
        end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        end.close()
    except OSError:
        pass
