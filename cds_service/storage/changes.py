"""Other processes' writes, heard: on PostgreSQL each process keeps its quiet answers
(``storage.quiet``) only while it hears, through ``LISTEN``, every write that could change them.

A write that changes what stored feedback silences (feedback, card records, the retention
sweep's deletions) names the patients it changed with ``pg_notify`` in its own transaction:
PostgreSQL delivers the notes when, and only if, it commits, and every process's listener drops
the answers they name. An answer kept elsewhere is stale only from that commit until the note
reaches the process (a round trip on its connection). Every write only adds silences (a snooze,
an accepted swap, a card shown today; the sweep deletes rows past any snooze), so a stale
answer can only let through a card that the write would have silenced, never silence one.

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
# Patient keys (64 hex digits) a note: ~6.5 KB, within a notification's 8,000 bytes.
KEYS_PER_NOTE = 100

_ANNOUNCE = select(text(f"pg_notify('{CHANNEL}', note)")).select_from(
    text("unnest(:notes) AS note").bindparams(bindparam("notes", type_=ARRAY(Text)))
)


def announce(connection: Connection, patients: set[str] | None, shown_by: str | None = None) -> None:
    """Tell every process (this one too), when this transaction commits, which answers it
    changes, as ``QuietCache.forget`` takes them: notes of ``<service> <key>,<key>,…`` (no
    service: all the patients' answers; ``*``: every patient's). Keys are HMACs of patient ids."""
    keys = [EVERY_PATIENT] if patients is None else sorted(patients)
    notes = [
        f"{shown_by or ''} {','.join(keys[start : start + KEYS_PER_NOTE])}"
        for start in range(0, len(keys), KEYS_PER_NOTE)
    ]
    if notes:
        connection.execute(_ANNOUNCE, {"notes": notes})


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
                    shown_by, _, keys = notification.payload.partition(" ")
                    patients = None if keys == EVERY_PATIENT else set(keys.split(","))
                    self._cache.forget(patients, shown_by=shown_by or None)
        finally:
            connection.close()
