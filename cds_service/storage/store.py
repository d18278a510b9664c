"""Durable storage of the cards the service issued and the feedback clinicians gave.

SQLAlchemy Core: an embedded SQLite file by default, PostgreSQL when ``CDS_DATABASE_URL`` is a
``postgresql+psycopg://`` URL, so that several processes (workers, containers) share one
database. Patient ids are never stored, nor the draft orders' references (an EHR may build an
order's id from its patient's): a keyed hash (HMAC-SHA256) lets the service recognise the same
patient and draft again without anyone with the database being able to reverse or
dictionary-attack it. The schema (``storage.schema``) is brought up to date on opening.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta, tzinfo
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from cds_service.clock import Clock, system_clock
from cds_service.protocol.feedback import FeedbackItem
from cds_service.settings import Settings
from cds_service.storage import feedback_writer
from cds_service.storage.changes import ChangeListener
from cds_service.storage.data_dir import PATIENT_KEY_FILE, load_patient_key, serve_alone, sqlite_file
from cds_service.storage.early_feedback import feedback_before
from cds_service.storage.engine import database_url, make_engine, opening, unbounded
from cds_service.storage.key_check import check_patient_key, refuse_a_lost_key, refuse_another_key
from cds_service.storage.keyed import key_all
from cds_service.storage.migrations import migrate
from cds_service.storage.quiet import QuietCache, read_quiet
from cds_service.storage.records import CardRecord, FeedbackReceipt, Owner, Quiet
from cds_service.storage.rows import insert_rows
from cds_service.storage.schema import answers_for_writes, feedback, issued_cards, issued_notices
from cds_service.storage.text import storable_rows
from cds_service.tracebacks import database_error

log = logging.getLogger(__name__)

# What names the SQLite file, for the messages about it.
_FILE_SETTING = "CDS_DATABASE_URL (or CDS_DATA_DIR, when it is unset)"


def open_store(settings: Settings, clock: Clock = system_clock, *, writes: bool = True, serving: bool = False) -> Store:
    """The store the settings name, with its patient-id key: what the service and the CLI share.
    ``writes``: False for a command that only reads (``cds-service report``: a backup it cannot write).
    ``serving``: ``cds-service serve``'s, which claims a SQLite file before migrating it (``serve_alone``)."""
    # A URL, or an option of it, the service cannot run on: refused before the key, the data
    # directory or the database file is made (an engine connects only when first used).
    parsed = database_url(settings.database)
    timeout = settings.database_statement_timeout_seconds
    make_engine(parsed, statement_timeout=timeout).dispose()
    configured = settings.patient_id_key.get_secret_value() if settings.patient_id_key else None
    key_file = settings.data_dir / PATIENT_KEY_FILE
    if writes and not configured and not os.path.exists(key_file):  # a key to make: unless one was lost
        refuse_a_lost_key(parsed, key_file, setting=_FILE_SETTING, statement_timeout=timeout)
    return Store(
        settings.database,
        patient_key=load_patient_key(configured, key_file),
        clock=clock,
        statement_timeout=timeout,
        zone=settings.zone,
        writes=writes,
        serving=serving,
    )


class Store:
    def __init__(
        self,
        url: str,
        *,
        patient_key: bytes,
        clock: Clock = system_clock,
        statement_timeout: float = 5.0,
        zone: tzinfo = UTC,
        writes: bool = True,
        serving: bool = False,
    ) -> None:
        self._lock_file: Path | None = None
        self._serving: IO[bytes] | None = None  # held while serving (``serve_alone``)
        parsed = database_url(url)
        if parsed.get_backend_name() == "sqlite":  # sqlite:///, sqlite+pysqlite:///, with a query or not
            self._lock_file = sqlite_file(Path(str(parsed.database)), _FILE_SETTING, writes=writes)
        # Timeouts, and hide_parameters: a database error names no value in the log (storage.engine).
        self.engine: Engine = make_engine(parsed, statement_timeout=statement_timeout, read_only=not writes)
        self._hmac = hmac.new(patient_key, digestmod=hashlib.sha256)
        self._now = clock
        self.zone = zone  # where the site's days begin: "the same day" of the quiet read, analytics' days
        self._sqlite_writer = threading.Lock()
        # ``quiet``'s answers kept; on PostgreSQL only while ``listen`` hears the others' writes.
        self._quiet = QuietCache(keeping=self.embedded)
        self._listener: ChangeListener | None = None
        # PostgreSQL reads each statement at its own snapshot (READ COMMITTED) in a transaction
        # or not: around the quiet read one only added the round trips of BEGIN and ROLLBACK
        # (issue 17: 760 → 370 µs of CPU a read, 1.6 → 0.5 ms).
        self._reads = self.engine if self.embedded else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        with opening(parsed):  # its first connection; a lock file that cannot be opened: one line, exit 3
            if serving and self._lock_file is not None:
                self._serving = serve_alone(self._lock_file, str(parsed.database))
            refuse_another_key(self.engine, patient_key)
            # A reader takes no lock: made beside the file, it could not be in a read-only directory.
            migrate(self.engine, lock_file=self._lock_file if writes else None, now=clock)
            check_patient_key(self.engine, patient_key)

    @property
    def embedded(self) -> bool:
        """SQLite: a file of this process's own, not a server across a network."""
        return self.engine.dialect.name == "sqlite"

    def pseudonym(self, value: str) -> str:
        """What is stored for a patient id or a draft's reference: its keyed hash."""
        keyed = self._hmac.copy()  # the key's two blocks hashed once, not for every value
        keyed.update(value.encode())
        return keyed.hexdigest()

    def patient_key(self, patient_id: str) -> str:
        return self.pseudonym(patient_id)

    def insert(self, table: Table) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def record_issued(self, records: Iterable[CardRecord]) -> None:
        """The records of several hook calls' cards, in one transaction (``Runtime.record_issued``
        queues them); each stamped with when its cards went out."""
        records = list(records)
        rows = [row for record in records for row in record.rows(self.pseudonym, self.patient_key)]
        rows = storable_rows(rows, "issued cards")  # a NUL in hookInstance failed the record (issue 16 #5)
        notices = storable_rows([row for record in records for row in record.notice_rows()], "issued notices")
        if not rows and not notices:
            return
        services = {str(row["service_id"]) for row in rows}
        patients = {s: {str(row["patient_key"]) for row in rows if row["service_id"] == s} for s in services}
        # Many rows to a statement, not one statement a row: SQLite lets go of the GIL for each
        # statement, and a thread that must win it back from a busy event loop waits up to a
        # switch interval each time (6,000 rows a statement each took over 5 s).
        if self.embedded or not rows:  # notices alone: no quiet answer counts them, no feedback to join
            with self.writing() as connection:
                insert_rows(connection, issued_cards, rows)
                insert_rows(connection, issued_notices, notices)
        else:
            with self.engine.connect() as connection:
                with connection.begin():
                    insert_rows(connection, issued_cards, rows)
                    insert_rows(connection, issued_notices, notices)
                # Another process may have stored feedback about these cards first (one process
                # waits for its own): looked for after the commit.
                if joined := feedback_before(connection, [str(row["uuid"]) for row in rows]):
                    self._quiet.forget(joined)  # only then: each forgetting drops the answers being read
        # The answers that count this service's cards (QuietCache.forget): kept on SQLite only,
        # so the other processes need not hear of card records (storage.changes).
        for service in services:
            self._quiet.forget(patients[service], shown_by=service)

    def listen(self, on_listening: Callable[[bool], object] = lambda _: None) -> None:
        """While serving on PostgreSQL: keep ``quiet``'s answers while the other processes' writes
        are heard (``storage.changes``); ``on_listening`` is told when that starts and stops."""
        if self.embedded:
            on_listening(True)  # every write is this process's own
        elif self._listener is None:
            self._listener = ChangeListener(self.engine, self._quiet, on_listening)
            self._listener.start()

    def stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    @contextmanager
    def writing(self, *, durable: bool = False) -> Iterator[Connection]:
        """A write transaction. With SQLite, one at a time per process: SQLite lets one writer in
        and makes the others poll, so concurrent hook calls would wait on its busy handler.

        SQLite runs with ``synchronous=NORMAL`` (a commit reaches the disk at the next WAL
        checkpoint: safe against a crash of the process, not of the machine), so the card and
        token-id writes of a hook call cost no fsync. ``durable`` commits with ``FULL``: for
        feedback, which the client is told is stored."""
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as connection:
                yield connection
            return
        with self._sqlite_writer, self.engine.connect() as connection:
            if durable:
                connection.exec_driver_sql("PRAGMA synchronous=FULL")
                connection.commit()
            try:
                with connection.begin():
                    yield connection
            finally:
                if durable:
                    connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
                    connection.commit()

    def record_feedback(
        self, *, service_id: str, items: list[FeedbackItem], owner: Owner | None = None
    ) -> FeedbackReceipt:
        """Store each item once: how many were new, and which items were refused, and why (the
        others are stored all the same: ``storage.feedback_writer``). Raises if the database
        cannot be reached. ``owner``: the client that sent it (None with authentication off)."""
        try:
            return feedback_writer.record_feedback(
                self, service_id=service_id, items=items, now=self._now(), owner=owner
            )
        finally:
            self._quiet.forget(None)  # what was stored before a failure counts too

    def sweep(self, *, retention: timedelta) -> int:
        """Forget cards, notices and feedback older than ``retention``; the rows deleted. A lock
        held elsewhere stops it."""
        cutoff = self._now() - retention
        with self.writing() as connection:
            unbounded(connection, lock_wait="2s")
            deleted = connection.execute(feedback.delete().where(feedback.c.received_at < cutoff)).rowcount
            deleted += connection.execute(issued_cards.delete().where(issued_cards.c.issued_at < cutoff)).rowcount
            deleted += connection.execute(issued_notices.delete().where(issued_notices.c.issued_at < cutoff)).rowcount
        if deleted:
            self._quiet.forget(None)
            log.info("retention: deleted %d card, notice and feedback rows older than %s", deleted, cutoff.date())
        return deleted

    def key_old_records(self) -> int:
        """Key what an older release wrote (``storage.keyed``); how many. Kept quiet answers stand."""
        try:
            keyed = key_all(self.writing, self.pseudonym)
        except OperationalError as error:  # a lock held past its wait, the database away
            log.warning("keying older card records paused (%s): the next sweep goes on", database_error(error))
            return 0
        if keyed:
            log.info("%d card records of an older release now keep their draft's reference as a keyed hash", keyed)
        return keyed

    def quiet(
        self,
        patient_id: str,
        *,
        snooze_days: dict[str, int],
        shown_by: Collection[str] = (),
        owner: Owner | None = None,
    ) -> Quiet:
        """What this patient's stored feedback and today's cards silence (``Quiet``).

        No accepted card silences its rule: a suggestion applied makes the rule silent by
        itself, and one the client did not apply must come back. Only a dose-change swap
        accepted today keeps its rule quiet, for the draft at the dose it left (``Order.dose_key``;
        the specification's exception for ``cyclobenzaprine-older-adult``, the hepatic rule's
        too). A snooze needs the explicit "dont-show-again" reason, and holds for cards no more
        severe than the one snoozed (``Quiet.snoozes``).
        ``shown_by``: the services (order-select) whose cards shown today are not repeated.
        ``owner``: the client asking; only the cards issued to it count (None: every card).
        Read from the database, and kept where it may be: ask ``kept_quiet`` first."""
        now = self._now()
        patient = self.patient_key(patient_id)
        asked = (owner, tuple(sorted(shown_by)))
        generation = self._quiet.generation
        with self._reads.connect() as connection:
            quiet, until = read_quiet(connection, patient, asked, now, snooze_days, self.zone, pseudonym=self.pseudonym)
        if self._keeps(shown_by):
            self._quiet.keep(patient, asked, quiet, until=until, generation=generation)
        return quiet

    def _keeps(self, shown_by: Collection[str]) -> bool:
        """On PostgreSQL, not an answer that counts the cards other services showed: a card
        accepted in another process un-silences it, which a kept answer would hide until the
        note came, and the cards shown are not announced at all (``storage.changes``)."""
        return self.embedded or not shown_by

    def kept_quiet(
        self, patient_id: str, *, shown_by: Collection[str] = (), owner: Owner | None = None
    ) -> Quiet | None:
        """``quiet``'s answer if one is kept, from memory: asked on the event loop first, a kept
        answer costs no hop to a database thread (on PostgreSQL that hop, not the read, cost most)."""
        if not self._keeps(shown_by):
            return None
        asked = (owner, tuple(sorted(shown_by)))
        return self._quiet.get(self.patient_key(patient_id), asked, self._now())

    def ping(self) -> int:
        """The schema version; raises unless the database answers and takes writes (``answers_for_writes``)."""
        with self.engine.connect() as connection:
            return answers_for_writes(connection)
