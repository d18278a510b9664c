"""Other processes' writes, heard: on PostgreSQL each process keeps its quiet answers
(``storage.quiet``) only while it hears, through ``LISTEN``, every write that could change them.

On PostgreSQL only answers that count no other service's cards are kept (order-select's: snoozes
and the swaps accepted today), and only changes to feedback change those. The database names
the patients of every change to feedback with ``pg_notify`` (triggers of schema version 7, so
whoever makes it: this service, an earlier release during a rolling upgrade, the retention sweep,
an operator by hand): PostgreSQL delivers the notes when, and only if, the change commits, and
every process's listener drops the answers they name. An answer kept elsewhere is stale from
that commit until the note arrives (milliseconds); feedback only adds silences, so a stale answer
can only let through a card the new feedback would have silenced. (Order-sign's answers, which
also count the cards order-select showed, lose one when a card is accepted: they are read on
every call.)

The notes go on a channel of the schema (two deployments, or two test runs, in one database
hear only their own). The listener keeps nothing until it hears a note of its own, sent from
another connection on a channel made for its connection (a pooler in transaction mode accepts
``LISTEN`` and delivers nothing, or a leftover listener's note), and one comes every second
while it listens: none heard for three seconds, or its connection dropped, and it stops keeping
(everything kept goes), reconnects every second, and keeps again once it hears itself.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any, cast

import psycopg
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from cds_service.storage.quiet import QuietCache
from cds_service.storage.schema import quiet_channel

log = logging.getLogger(__name__)

# Every change to feedback names its patients to the processes that keep quiet answers
# (storage.changes), whoever makes it: this service, a process of an earlier release during a
# rolling upgrade, the retention sweep, an operator by hand. On the table's schema's channel, a
# hundred patient keys a note (a note holds 8,000 bytes). PostgreSQL only: SQLite has one process.
_FEEDBACK_CHANGED = f"""
CREATE OR REPLACE FUNCTION cds_feedback_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  channel TEXT;
  keys TEXT[];
BEGIN
  channel := {quiet_channel("TG_TABLE_SCHEMA")};
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify(channel, '*');
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    keys := ARRAY(SELECT patient_key FROM changed_after);
  ELSIF TG_OP = 'DELETE' THEN
    keys := ARRAY(SELECT patient_key FROM changed_before);
  ELSE
    keys := ARRAY(SELECT patient_key FROM changed_after UNION SELECT patient_key FROM changed_before);
  END IF;
  PERFORM pg_notify(channel, string_agg(key, ','))
  FROM (
    SELECT key, (row_number() OVER (ORDER BY key) - 1) / 100 AS note
    FROM (SELECT DISTINCT key FROM unnest(keys) AS key WHERE key IS NOT NULL) AS distinct_keys
  ) AS numbered
  GROUP BY note;
  RETURN NULL;
END $$
"""
_FEEDBACK_TRIGGERS = (
    "CREATE TRIGGER cds_feedback_inserted AFTER INSERT ON feedback REFERENCING NEW TABLE AS changed_after",
    "CREATE TRIGGER cds_feedback_deleted AFTER DELETE ON feedback REFERENCING OLD TABLE AS changed_before",
    "CREATE TRIGGER cds_feedback_updated AFTER UPDATE ON feedback "
    "REFERENCING OLD TABLE AS changed_before NEW TABLE AS changed_after",
    "CREATE TRIGGER cds_feedback_truncated AFTER TRUNCATE ON feedback",
)


def announce_feedback(connection: Connection) -> None:
    """The triggers above, on this schema's feedback table (schema version 7; a new database too)."""
    if connection.dialect.name != "postgresql":
        return
    connection.exec_driver_sql(_FEEDBACK_CHANGED)
    for trigger in _FEEDBACK_TRIGGERS:
        connection.exec_driver_sql(f"{trigger} FOR EACH STATEMENT EXECUTE FUNCTION cds_feedback_changed()")


# The channel of the changes to feedback in this connection's schema, the tables' (storage.schema).
CHANNEL = quiet_channel("current_schema()")
EVERY_PATIENT = "*"
RECONNECT_SECONDS = 1.0
# How often the listener sends itself a note, and how long it may go without hearing one before
# it takes itself for deaf (a network path gone silent leaves a connection open that hears nothing).
HEARTBEAT_SECONDS = 1.0
DEAF_SECONDS = 3.0


class Deaf(Exception):
    """``LISTEN`` accepted, and a note sent to it not heard in time."""


class ChangeListener:
    """A daemon thread on a connection of its own, ``LISTEN``-ing for the others' writes, and one
    that sends it a note of its own every second, from another connection, to hear that it hears."""

    def __init__(self, engine: Engine, cache: QuietCache, on_listening: Callable[[bool], Any] = lambda _: None) -> None:
        self._engine = engine
        self._cache = cache
        self._on_listening = on_listening
        self._stopped = threading.Event()
        self._listened = False  # since the last (re)connection
        self._heard_at = 0.0  # when its own note last came back (monotonic)
        self._own: str | None = None  # the channel of its own notes, made for each connection
        self._threads = [
            threading.Thread(target=self._run, name="cds-quiet-listener", daemon=True),
            threading.Thread(target=self._beat, name="cds-quiet-heartbeat", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """At once (the heartbeat's last note wakes the listener), or within a heartbeat; a thread
        stuck on a database gone silent is left behind."""
        self._stopped.set()
        for thread in self._threads:
            thread.join(timeout=2 * HEARTBEAT_SECONDS)

    def _run(self) -> None:
        first = True
        while not self._stopped.is_set():
            self._listened = False
            try:
                self._listen()
            except Exception as error:  # whatever it was, nothing is kept until it hears itself again
                if first or self._listened:  # once an outage, not every second of it
                    reason = str(error) if isinstance(error, Deaf) else type(error).__name__
                    log.warning("not hearing the other processes' writes (%s): quiet answers read each call", reason)
            finally:
                self._own = None
                self._cache.suspend()
                self._on_listening(False)
            first = False
            self._sleep(RECONNECT_SECONDS)

    def _listen(self) -> None:
        connection = self._connect()
        try:
            connection.execute("SET application_name = 'cds-quiet-listener'")
            row = connection.execute(f"SELECT {CHANNEL}").fetchone()
            assert row is not None
            own = f"{row[0]}_{secrets.token_hex(4)}"
            connection.execute(f'LISTEN "{row[0]}"')
            connection.execute(f'LISTEN "{own}"')
            self._heard_at, self._own = time.monotonic(), own  # the heartbeat starts sending
            while not self._stopped.is_set():
                for notification in connection.notifies(timeout=HEARTBEAT_SECONDS):
                    self._take(notification.channel == own, notification.payload)
                    if self._stopped.is_set() or self._deaf():
                        break
                if self._deaf():
                    raise Deaf(f"its own note not heard for {DEAF_SECONDS:g} s")
        finally:
            connection.close()

    def _take(self, own: bool, note: str) -> None:
        if own:
            self._heard_at = time.monotonic()
            if not self._listened:  # heard itself: from here on no write is missed
                self._cache.resume()
                self._listened = True
                self._on_listening(True)
                log.info("hearing the other processes' writes: quiet answers kept")
        else:
            self._cache.forget(None if note == EVERY_PATIENT else set(note.split(",")))

    def _deaf(self) -> bool:
        return time.monotonic() - self._heard_at > DEAF_SECONDS

    def _beat(self) -> None:
        """Its own note to the listener every second, on a connection of this thread's (not the
        pool's, which busy calls could hold longer than the listener waits)."""
        connection: psycopg.Connection[Any] | None = None
        while self._sleep(HEARTBEAT_SECONDS):
            if (own := self._own) is None:
                continue
            try:
                connection = connection or self._connect()
                connection.execute("SELECT pg_notify(%s, '')", (own,))
            except Exception:  # not heard back: the listener notices
                with suppress(Exception):
                    if connection is not None:
                        connection.close()
                connection = None
        if connection is not None:  # stopping: one more note wakes the listener to see it
            with suppress(Exception):
                if (own := self._own) is not None:
                    connection.execute("SELECT pg_notify(%s, '')", (own,))
                connection.close()

    def _sleep(self, seconds: float) -> bool:
        """Sleep, in steps, until ``seconds`` have passed (True) or the listener stops (False).
        Not a timed wait on the stop event: under libfaketime, which the suite runs under to
        check next year, that waits for ever (its deadline is on the faked clock)."""
        end = time.monotonic() + seconds
        while not self._stopped.is_set():
            if (left := end - time.monotonic()) <= 0:
                return True
            time.sleep(min(left, 0.1))
        return False

    def _connect(self) -> psycopg.Connection[Any]:
        """A connection as the engine makes them (its timeouts, UTC), this thread's alone."""
        pooled = self._engine.raw_connection()
        pooled.detach()  # never back to the pool
        connection = cast(psycopg.Connection[Any], pooled.dbapi_connection)  # the psycopg dialect's
        connection.autocommit = True
        return connection
