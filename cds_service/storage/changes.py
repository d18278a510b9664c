"""Other processes' writes, heard: on PostgreSQL each process keeps its quiet answers
(``storage.quiet``) only while it hears, through ``LISTEN``, every write that could change them.

A write that changes what stored feedback silences (feedback, a card issued, the retention sweep)
is announced with ``pg_notify`` once it is committed; every process's listener drops the answers
it names. An answer is therefore stale only between another process's commit and its
announcement reaching this one (a round trip on the database's connection), or, should the
writing process die between its commit and its announcement, until the kept answer's own end
(midnight, or a snooze running out). Every write only adds silences (a snooze, an accepted swap,
a card shown today; the sweep deletes rows long past any snooze), so a stale answer can only let
a card through that the write would have silenced, never silence one it should not.

While the listener is not connected (at start, after its connection drops) nothing is kept and
every call reads; it reconnects every second, listens, and only then starts keeping again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import Text

from cds_service.storage.quiet import QuietCache

log = logging.getLogger(__name__)

CHANNEL = "cds_quiet"
EVERY_PATIENT = "*"
RECONNECT_SECONDS = 1.0

_ANNOUNCE = select(text(f"pg_notify('{CHANNEL}', note)")).select_from(
    text("unnest(:notes) AS note").bindparams(bindparam("notes", type_=ARRAY(Text)))
)


def announce(connection: Connection, patients: set[str] | None, shown_by: str | None) -> None:
    """Tell every process (this one too) which answers a committed write changed, as
    ``QuietCache.forget`` takes them: one ``<service> <patient key>`` note a patient (no service:
    all its answers; ``*``: every patient's). Keys are HMACs: no patient id leaves the store."""
    keys = [EVERY_PATIENT] if patients is None else sorted(patients)
    if keys:
        connection.execute(_ANNOUNCE, {"notes": [f"{shown_by or ''} {key}" for key in keys]})


class ChangeListener:
    """A daemon thread on a connection of its own, ``LISTEN``-ing for the others' writes."""

    def __init__(self, engine: Engine, cache: QuietCache, on_listening: Callable[[bool], Any] = lambda _: None) -> None:
        self._engine = engine
        self._cache = cache
        self._on_listening = on_listening
        self._stopped = threading.Event()
        self._listened = False  # since the last (re)connection
        self._thread = threading.Thread(target=self._run, name="cds-quiet-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2 * RECONNECT_SECONDS)

    def _run(self) -> None:
        first = True
        while not self._stopped.is_set():
            self._listened = False
            try:
                self._listen()
            except (SQLAlchemyError, psycopg.Error, OSError) as error:
                if first or self._listened:  # once an outage, not every second of it
                    reason = type(error).__name__
                    log.warning("not hearing the other processes' writes (%s): quiet answers read each call", reason)
            finally:
                self._cache.suspend()
                self._on_listening(False)
            first = False
            self._stopped.wait(RECONNECT_SECONDS)

    def _listen(self) -> None:
        pooled = self._engine.raw_connection()
        pooled.detach()  # this thread's for as long as it listens, never back to the pool
        connection = pooled.dbapi_connection
        assert connection is not None
        try:
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            # Listening from here on: what was kept before may have missed a write, so it goes.
            self._cache.resume()
            self._listened = True
            self._on_listening(True)
            while not self._stopped.is_set():
                for notification in connection.notifies(timeout=RECONNECT_SECONDS):
                    shown_by, _, patient = notification.payload.partition(" ")
                    patients = None if patient == EVERY_PATIENT else {patient}
                    self._cache.forget(patients, shown_by=shown_by or None)
        finally:
            connection.close()
