"""The schema's history: the migrations that bring any older database up to date on start-up,
one process at a time.

Steps are append-only: a released step never changes. A new database is created at the latest
version; one from before versioning is taken as version 1.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from cds_service.storage.changes import announce_feedback
from cds_service.storage.data_dir import private_lock
from cds_service.storage.engine import CannotStartOnDatabase, unbounded, waits_for_locks
from cds_service.storage.feedback_once import key_feedback_by_client
from cds_service.storage.quieting_index import index_quieting
from cds_service.storage.schema import metadata, schema_version

log = logging.getLogger(__name__)

# On PostgreSQL a step that changes a table waits for every transaction that has read it, and
# while it waits every later reader of the table queues behind it: a long analytics read or
# retention sweep of a process of the release before would stall that process's hook calls for
# as long. A migration waits at most LOCK_WAIT for a lock; then it is rolled back, the others'
# queries go on, and it is tried again, LOCK_TRIES times in all (about a minute and a half).
# A deadlock with the release before (its locks taken in another order) is tried again too.
LOCK_WAIT = "2s"
LOCK_TRIES = 30
RETRY_PAUSE_SECONDS = 1.0
_TRY_AGAIN = {"55P03": "lock not available", "40P01": "deadlock"}
# PostgreSQL advisory locks: one migration's transaction at a time (every release takes it), and
# one starting process of this schema's deployment trying at a time across its pauses (without
# it, the next process in line took the migration lock the moment one gave up, and the table was
# never free). The second is keyed by the schema too: another deployment's tries hold up no one.
_MIGRATING = 7302112026
_TRYING = "73021120, hashtext(current_schema())"


@dataclass(frozen=True)
class Migration:
    """One step of the schema's history. Steps are append-only: a released step never changes."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _add_indicator(connection: Connection) -> None:
    connection.execute(text("ALTER TABLE issued_cards ADD COLUMN indicator VARCHAR(20)"))
    connection.execute(text("CREATE INDEX ix_issued_cards_patient_rule ON issued_cards (patient_key, rule_id)"))


def _add_feedback_patient(connection: Connection) -> None:
    connection.execute(text("ALTER TABLE feedback ADD COLUMN patient_key VARCHAR(64)"))
    connection.execute(
        text(
            "UPDATE feedback SET patient_key = "
            "(SELECT patient_key FROM issued_cards WHERE issued_cards.uuid = feedback.card_uuid)"
        )
    )
    connection.execute(text("CREATE INDEX ix_feedback_patient_received ON feedback (patient_key, received_at)"))


def _add_keys_after(connection: Connection) -> None:
    connection.execute(text("ALTER TABLE issued_cards ADD COLUMN keys_after TEXT"))


def _add_draft(connection: Connection) -> None:
    connection.execute(text("ALTER TABLE issued_cards ADD COLUMN draft VARCHAR(300)"))
    connection.execute(text("ALTER TABLE issued_cards ADD COLUMN draft_hash VARCHAR(64)"))
    # order_key is "<draft reference>|<what it orders>"; a FHIR reference holds no "|".
    if connection.dialect.name == "postgresql":
        connection.execute(text("UPDATE issued_cards SET draft = split_part(order_key, '|', 1)"))
    else:
        connection.execute(
            text(
                "UPDATE issued_cards SET draft = CASE WHEN instr(order_key, '|') > 0 "
                "THEN substr(order_key, 1, instr(order_key, '|') - 1) ELSE order_key END"
            )
        )


def _add_owner(connection: Connection) -> None:
    for table in ("issued_cards", "feedback"):
        connection.execute(text(f"ALTER TABLE {table} ADD COLUMN issuer TEXT"))
        connection.execute(text(f"ALTER TABLE {table} ADD COLUMN tenant TEXT"))
    connection.execute(text("CREATE INDEX ix_issued_cards_issuer_issued ON issued_cards (issuer, issued_at)"))


def _add_suggestions(connection: Connection) -> None:
    connection.execute(text("ALTER TABLE issued_cards ADD COLUMN suggestions TEXT"))


def _add_key_check(connection: Connection) -> None:
    connection.execute(
        text("CREATE TABLE patient_key_check (id INTEGER PRIMARY KEY, fingerprint VARCHAR(64) NOT NULL)")
    )


def _add_keyed(connection: Connection) -> None:
    # The rows to key (storage.keyed): those of older releases, the only ones the index holds.
    connection.execute(text("ALTER TABLE issued_cards ADD COLUMN keyed SMALLINT"))
    connection.execute(text("CREATE INDEX ix_issued_cards_unkeyed ON issued_cards (uuid) WHERE keyed IS NULL"))


def _add_subject(connection: Connection) -> None:
    # Null for every card stored before: what it named cannot be told (``Quiet.snoozes``).
    connection.execute(text("ALTER TABLE issued_cards ADD COLUMN subject TEXT"))


def _add_notices(connection: Connection) -> None:
    # A table of its own: no reader of issued_cards may take a notice for a rule's alert.
    timestamp = "TIMESTAMP WITH TIME ZONE" if connection.dialect.name == "postgresql" else "DATETIME"
    connection.execute(
        text(
            "CREATE TABLE issued_notices (uuid VARCHAR(64) PRIMARY KEY, code VARCHAR(100) NOT NULL, "
            f"service_id VARCHAR(100) NOT NULL, issued_at {timestamp} NOT NULL, issuer TEXT, tenant TEXT)"
        )
    )
    connection.execute(text("CREATE INDEX ix_issued_notices_issued_at ON issued_notices (issued_at)"))


def _add_card_sent(connection: Connection) -> None:
    # A card's UUID sent in upper case was stored as sent, and named no card (unmatched feedback,
    # its snooze lost): stored now in lower case where that names a card or notice of the item's
    # own client, as this release stores it, the client's spelling kept. One of the same moment
    # stored in another case (a resend) leaves both as they are: one row would have to go.
    connection.execute(text("ALTER TABLE feedback ADD COLUMN card_sent TEXT"))
    same = "IS NOT DISTINCT FROM" if connection.dialect.name == "postgresql" else "IS"
    owned = (
        f"c.uuid = lower(feedback.card_uuid) AND c.issuer {same} feedback.issuer AND c.tenant {same} feedback.tenant"
    )
    card = f"(SELECT c.{{}} FROM issued_cards c WHERE {owned})"
    connection.execute(
        text(
            "UPDATE feedback SET card_sent = card_uuid, card_uuid = lower(card_uuid), "
            f"rule_id = {card.format('rule_id')}, patient_key = {card.format('patient_key')} "
            "WHERE card_uuid <> lower(card_uuid) AND length(card_uuid) = 36 "
            f"AND (EXISTS (SELECT 1 FROM issued_cards c WHERE {owned}) "
            f"OR EXISTS (SELECT 1 FROM issued_notices c WHERE {owned})) "
            "AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.id <> feedback.id "
            "AND lower(f.card_uuid) = lower(feedback.card_uuid) AND f.outcome = feedback.outcome "
            "AND f.outcome_timestamp = feedback.outcome_timestamp)"
        )
    )


MIGRATIONS = (
    # Version 1 is the schema before versioning: issued_cards, feedback, seen_tokens.
    Migration(1, "cards issued, feedback, client token ids", lambda connection: None),
    Migration(2, "card indicator, to snooze warning and info cards but never critical ones", _add_indicator),
    Migration(3, "feedback keyed by patient, so a hook call reads only that patient's", _add_feedback_patient),
    Migration(4, "the order a dose-change suggestion leaves, so accepting it keeps its rule quiet", _add_keys_after),
    Migration(5, "the draft of each card, and a hash of what it said: alerts, not calls, are counted", _add_draft),
    Migration(6, "the client each card went to and each feedback came from: analytics scoped to it", _add_owner),
    Migration(7, "every change to feedback announced to the processes that keep quiet answers", announce_feedback),
    Migration(8, "the suggestions each card offered, to refuse feedback accepting one it did not", _add_suggestions),
    Migration(9, "which cards keep their draft's reference as a keyed hash, as patient ids are", _add_keyed),
    Migration(10, "a fingerprint of the patient-id key, so a process started with another is refused", _add_key_check),
    Migration(11, "what each card named besides the order, so a snooze holds for that alone", _add_subject),
    Migration(12, "the service's own notices issued, so feedback on one is not taken for a lost card", _add_notices),
    Migration(
        13, "feedback naming its card's UUID in upper case matched to it, as the client sent it kept", _add_card_sent
    ),
    Migration(
        14, "feedback stored once per client: another client's item of a moment is its own", key_feedback_by_client
    ),
    Migration(15, "feedback indexed so a hook call reads only the items that may quiet a card", index_quieting),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


@contextmanager
def _migration_lock(engine: Engine, connection: Connection, lock_file: Path | None) -> Iterator[None]:
    """Several workers start at once: one migrates, the others wait and find it done.

    On SQLite the transaction is begun here, by hand: pysqlite begins one only before an INSERT,
    UPDATE or DELETE, so each ALTER TABLE or CREATE INDEX before one was committed alone, and a
    step stopped midway (an error, a kill) left its columns without its version: the next start
    failed on them ("duplicate column name"), or on a version table made and left empty. Begun
    IMMEDIATE, with the file's write lock (as long as a write would wait for it), so no other
    process commits between this one's reading the version and its steps (a reader, which
    never migrates, takes none)."""
    if engine.dialect.name == "postgresql":
        _wait_for_another(connection)
        connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATING})"))
        waits_for_locks(connection, LOCK_WAIT)  # the tables' locks, not the one above
        yield
    elif lock_file is not None:
        with private_lock(lock_file) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        connection.exec_driver_sql("BEGIN")
        yield


def _wait_for_another(connection: Connection) -> None:
    """For the rest of this transaction, wait as long as another process's migration takes: no
    statement timeout, nor a lock timeout a role may set by default."""
    unbounded(connection)
    connection.execute(text("SET LOCAL lock_timeout = 0"))


@contextmanager
def _one_starter(engine: Engine) -> Iterator[None]:
    """On PostgreSQL, this process alone tries to migrate until it is done (``_TRYING``, held on
    a connection of its own across the tries and their pauses)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        with connection.begin():
            _wait_for_another(connection)
            connection.execute(text(f"SELECT pg_advisory_lock({_TRYING})"))  # outlives the transaction
        try:
            yield
        finally:
            try:
                connection.execute(text(f"SELECT pg_advisory_unlock({_TRYING})"))
                connection.commit()
            except Exception:  # the connection is gone, or going: the lock goes with it
                connection.invalidate()


def migrate(engine: Engine, *, lock_file: Path | None, now: Callable[[], datetime]) -> None:
    """Create a new database at the latest version, or apply the steps an older one lacks;
    tried again while a table it changes is held by another's transaction (``LOCK_WAIT``)."""
    with _one_starter(engine):
        for attempt in range(1, LOCK_TRIES + 1):
            try:
                return _migrate(engine, lock_file=lock_file, now=now)
            except OperationalError as error:
                reason = _TRY_AGAIN.get(getattr(error.orig, "sqlstate", None) or "")
                if reason is None:
                    raise
                waiting = (error.statement or "").strip().split("\n", 1)[0][:120]  # the migration's own SQL
                if attempt == LOCK_TRIES:
                    raise CannotStartOnDatabase(
                        f"the schema migration could not lock the tables it changes in {LOCK_TRIES} tries of "
                        f"{LOCK_WAIT} ({reason}, at {waiting!r}): a long transaction holds them "
                        "(pg_stat_activity names it); start again once it ends"
                    ) from error
                log.warning(
                    "schema migration: %s at %r; rolled back, trying again (%d of %d)",
                    reason,
                    waiting,
                    attempt + 1,
                    LOCK_TRIES,
                )
                time.sleep(RETRY_PAUSE_SECONDS)


def _migrate(engine: Engine, *, lock_file: Path | None, now: Callable[[], datetime]) -> None:

    def stamp(connection: Connection, step: Migration) -> None:
        connection.execute(
            schema_version.insert(), {"version": step.version, "description": step.description, "applied_at": now()}
        )

    with engine.begin() as connection, _migration_lock(engine, connection, lock_file):
        tables = set(inspect(connection).get_table_names())
        if "issued_cards" not in tables:
            metadata.create_all(connection)
            announce_feedback(connection)  # what create_all cannot make
            stamp(connection, MIGRATIONS[-1])
            log.info("database created at schema version %d", SCHEMA_VERSION)
            return
        if "schema_version" not in tables:  # created before versioning: version 1
            schema_version.create(connection)
            stamp(connection, MIGRATIONS[0])
        current = connection.execute(select(func.max(schema_version.c.version))).scalar_one()
        if current is None:  # emptied by hand: which steps it has cannot be told
            raise CannotStartOnDatabase("its schema_version table is empty: restore it, or the database, from a backup")
        if current > SCHEMA_VERSION:
            raise CannotStartOnDatabase(f"it is at schema version {current}, newer than this service's")
        for step in MIGRATIONS:
            if step.version > current:
                step.apply(connection)
                stamp(connection, step)
                log.info("database migrated to schema version %d: %s", step.version, step.description)
