"""Durable storage of the cards the service issued and the feedback clinicians gave.

SQLAlchemy Core: an embedded SQLite file by default, PostgreSQL when ``CDS_DATABASE_URL`` is a
``postgresql+psycopg://`` URL, so that several processes (workers, containers) share one
database. Patient ids are never stored: a keyed hash (HMAC-SHA256) lets the service recognise
the same patient again without anyone with the database being able to reverse or
dictionary-attack it. The schema (``storage.schema``) is brought up to date on opening.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, bindparam, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from cds_service.clock import Clock, system_clock
from cds_service.content.cards import OVERRIDE_REASON_SYSTEM, SNOOZE_REASON
from cds_service.protocol.feedback import FeedbackItem
from cds_service.settings import Settings
from cds_service.storage import feedback_writer
from cds_service.storage.engine import make_engine, unbounded
from cds_service.storage.records import CardRecord, FeedbackReceipt, Owner, Quiet
from cds_service.storage.schema import feedback, issued_cards, metadata, migrate, schema_version
from cds_service.storage.text import storable_rows

log = logging.getLogger(__name__)


def _utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def load_patient_key(configured: str | None, key_file: Path) -> bytes:
    """The HMAC key: configured, or generated once into ``key_file`` (mode 0600) and reused."""
    if configured:
        return configured.encode()
    if key_file.exists():
        return key_file.read_bytes().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def open_store(settings: Settings, clock: Clock = system_clock) -> Store:
    """The store the settings name, with its patient-id key: what the service and the CLI share."""
    configured = settings.patient_id_key.get_secret_value() if settings.patient_id_key else None
    key = load_patient_key(configured, settings.data_dir / "patient-id.key")
    return Store(
        settings.database,
        patient_key=key,
        clock=clock,
        statement_timeout=settings.database_statement_timeout_seconds,
    )


class Store:
    def __init__(
        self,
        url: str,
        *,
        patient_key: bytes,
        clock: Clock = system_clock,
        statement_timeout: float = 5.0,
    ) -> None:
        self._lock_file: Path | None = None
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = path.with_name(path.name + ".migrate.lock")
        # Timeouts, and hide_parameters: a database error names no value in the log (storage.engine).
        self.engine: Engine = make_engine(url, statement_timeout=statement_timeout)
        self._patient_key = patient_key
        self._now = clock
        self._sqlite_writer = threading.Lock()
        migrate(self.engine, lock_file=self._lock_file, now=clock)

    @property
    def embedded(self) -> bool:
        """SQLite: a file of this process's own, not a server across a network."""
        return self.engine.dialect.name == "sqlite"

    def patient_key(self, patient_id: str) -> str:
        return hmac.new(self._patient_key, patient_id.encode(), hashlib.sha256).hexdigest()

    def insert(self, table: Table) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def record_issued(self, records: Iterable[CardRecord]) -> None:
        """The records of several hook calls' cards, in one transaction (``Runtime.record_issued``
        queues them); each stamped with when its cards went out."""
        rows = [
            {
                "uuid": c.uuid,
                "rule_id": c.rule_id,
                "indicator": c.indicator,
                "service_id": record.service_id,
                "hook_instance": record.hook_instance,
                "patient_key": self.patient_key(record.patient_id),
                "order_key": c.order_key,
                "keys_after": json.dumps(dict(c.keys_after)) if c.keys_after else None,
                "draft": c.draft,
                "draft_hash": c.draft_hash,
                "issued_at": record.issued_at,
                "issuer": c.owner.issuer if c.owner else None,
                "tenant": c.owner.tenant if c.owner else None,
            }
            for record in records
            for c in record.cards
        ]
        rows = storable_rows(rows, "issued cards")  # a NUL in hookInstance failed the record (issue 16 #5)
        if rows:
            with self.writing() as connection:
                connection.execute(self.insert(issued_cards).on_conflict_do_nothing(), rows)

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
        """Store each item once: how many were new, and which items the database refused (the
        others are stored all the same: ``storage.feedback_writer``). Raises if the database
        cannot be reached. ``owner``: the client that sent it (None with authentication off)."""
        return feedback_writer.record_feedback(self, service_id=service_id, items=items, now=self._now(), owner=owner)

    def sweep(self, *, retention: timedelta) -> int:
        """Forget cards and feedback older than ``retention``; returns the rows deleted."""
        cutoff = self._now() - retention
        with self.writing() as connection:
            unbounded(connection)
            deleted = connection.execute(feedback.delete().where(feedback.c.received_at < cutoff)).rowcount
            deleted += connection.execute(issued_cards.delete().where(issued_cards.c.issued_at < cutoff)).rowcount
        if deleted:
            log.info("retention: deleted %d card and feedback rows older than %s", deleted, cutoff.date())
        return deleted

    def quiet(self, patient_id: str, *, snooze_days: dict[str, int], shown_by: Collection[str] = ()) -> Quiet:
        """What this patient's stored feedback and today's cards silence (``Quiet``).

        No accepted card silences its rule: a suggestion applied makes the rule silent by
        itself, and one the client did not apply must come back. Only a dose-change swap
        accepted today keeps its rule quiet for the draft it left (clinical specification v2,
        ``cyclobenzaprine-older-adult``). A snooze needs the explicit "dont-show-again" reason.
        ``shown_by``: the services (order-select) whose cards shown today are not repeated."""
        now = self._now()
        patient = self.patient_key(patient_id)
        today = datetime.combine(now.date(), time.min, UTC)
        since = min(today, now - timedelta(days=max([0, *snooze_days.values()])))
        swapped: set[tuple[str, str]] = set()
        snoozed: set[str] = set()
        with self.engine.connect() as connection:
            for row in connection.execute(_FEEDBACK_OF_PATIENT, {"patient": patient, "since": since}):
                at = _utc(row.received_at)
                if row.outcome == "accepted" and at >= today:
                    swapped.update((row.rule_id, key) for key in _keys_after(row.keys_after, row.accepted_suggestions))
                days = snooze_days.get(row.rule_id, 0)
                asked = row.override_code == SNOOZE_REASON and row.override_system in (None, OVERRIDE_REASON_SYSTEM)
                snoozable = row.outcome == "overridden" and asked and row.indicator in ("warning", "info")
                if snoozable and days and at >= now - timedelta(days=days):
                    snoozed.add(row.rule_id)
            shown = self._shown_today(connection, patient, today, shown_by) if shown_by else frozenset()
        return Quiet(swapped=frozenset(swapped), snoozed=frozenset(snoozed), shown=shown)

    def _shown_today(
        self, connection: Connection, patient: str, today: datetime, services: Collection[str]
    ) -> frozenset[str]:
        """Draft hashes of the non-critical cards ``services`` showed this patient today, less
        those of which any card was accepted (its suggestion, not applied, must come back)."""
        rows = connection.execute(_SHOWN_TO_PATIENT, {"patient": patient, "today": today, "services": list(services)})
        return frozenset(row.draft_hash for row in rows if not row[2] and row.indicator in ("warning", "info"))

    def ping(self) -> int:
        """The schema version; raises unless the database answers and holds this service's tables."""
        with self.engine.connect() as connection:
            for table in metadata.sorted_tables:
                connection.execute(select(table).limit(1)).all()
            return connection.execute(select(func.max(schema_version.c.version))).scalar_one()


# The reads of every hook call with a card, built once: SQLAlchemy then skips building the
# statement and its cache key on each call (a third of the quiet read's cost).
_FEEDBACK_OF_PATIENT = (
    select(
        issued_cards.c.rule_id,
        issued_cards.c.indicator,
        issued_cards.c.keys_after,
        feedback.c.outcome,
        feedback.c.accepted_suggestions,
        feedback.c.override_system,
        feedback.c.override_code,
        feedback.c.received_at,
    )
    .join(feedback, feedback.c.card_uuid == issued_cards.c.uuid)
    .where(feedback.c.patient_key == bindparam("patient"), feedback.c.received_at >= bindparam("since"))
)
_SHOWN_TO_PATIENT = (
    select(
        issued_cards.c.draft_hash,
        func.min(issued_cards.c.indicator).label("indicator"),
        func.max(case((feedback.c.outcome == "accepted", 1), else_=0)),
    )
    .outerjoin(feedback, feedback.c.card_uuid == issued_cards.c.uuid)
    .where(
        issued_cards.c.patient_key == bindparam("patient"),
        issued_cards.c.issued_at >= bindparam("today"),
        issued_cards.c.service_id.in_(bindparam("services", expanding=True)),
        issued_cards.c.draft_hash.is_not(None),
    )
    .group_by(issued_cards.c.draft_hash)
)


def _keys_after(keys_after: str | None, accepted_suggestions: str | None) -> list[str]:
    """The order keys the accepted dose-change suggestions of a card left the draft with."""
    if not keys_after or not accepted_suggestions:
        return []
    after = json.loads(keys_after)
    return [after[uuid] for uuid in json.loads(accepted_suggestions) if uuid in after]
