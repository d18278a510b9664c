"""Durable storage of the cards the service issued and the feedback clinicians gave.

SQLAlchemy Core: an embedded SQLite file by default, PostgreSQL when ``CDS_DATABASE_URL`` is a
``postgresql+psycopg://`` URL, so that several processes (workers, containers) share one
database. Patient ids are never stored: a keyed hash (HMAC-SHA256) lets the service recognise
the same patient again without anyone with the database being able to reverse or
dictionary-attack it. The schema is versioned (``schema_version``) and brought up to date on
start-up, one process at a time.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    case,
    create_engine,
    distinct,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from cds_service.clock import Clock, system_clock
from cds_service.evaluate import IssuedCard, Quiet
from cds_service.feedback import FeedbackItem
from cds_service.settings import Settings

log = logging.getLogger(__name__)

metadata = MetaData()

issued_cards = Table(
    "issued_cards",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("rule_id", String(100), nullable=False, index=True),
    Column("service_id", String(100), nullable=False),
    Column("hook_instance", String(200), nullable=False),
    Column("patient_key", String(64), nullable=False, index=True),
    Column("order_key", String(300), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    # critical, warning or info: only warning and info cards are snoozed. Null before version 2.
    Column("indicator", String(20)),
    Index("ix_issued_cards_patient_rule", "patient_key", "rule_id"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card_uuid", String(100), nullable=False, index=True),
    Column("service_id", String(100), nullable=False),
    # Null when the card is unknown to this service (e.g. issued before a data loss): kept anyway.
    Column("rule_id", String(100)),
    Column("outcome", String(20), nullable=False),
    Column("accepted_suggestions", Text),
    Column("override_system", String(500)),
    Column("override_code", String(200)),
    Column("override_display", String(500)),
    Column("user_comment", Text),
    Column("outcome_timestamp", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # The card's patient (null when the card is unknown), so that a hook call reads this
    # patient's recent feedback alone, however many cards the patient was ever shown. Version 3.
    Column("patient_key", String(64)),
    # Clients resend feedback: the same card, outcome and time is one item.
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="feedback_once"),
    Index("ix_feedback_patient_received", "patient_key", "received_at"),
)

# Client JWT ids seen, kept until the token expires: a replayed token is refused by every
# process that shares this database.
seen_tokens = Table(
    "seen_tokens",
    metadata,
    Column("issuer", String(500), primary_key=True),
    Column("jti", String(256), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

# How often expired token ids are swept out.
_SWEEP_EVERY = timedelta(minutes=1)


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


MIGRATIONS = (
    # Version 1 is the schema before versioning: issued_cards, feedback, seen_tokens.
    Migration(1, "cards issued, feedback, client token ids", lambda connection: None),
    Migration(2, "card indicator, to snooze warning and info cards but never critical ones", _add_indicator),
    Migration(3, "feedback keyed by patient, so a hook call reads only that patient's", _add_feedback_patient),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


@dataclass(frozen=True)
class CardOutcomes:
    """Cards of one rule issued on one day, by what became of them."""

    day: date
    rule_id: str
    issued: int
    accepted: int
    overridden: int


@dataclass(frozen=True)
class ReasonCount:
    """Cards of a rule overridden with one reason (or none: system and code are None)."""

    rule_id: str
    system: str | None
    code: str | None
    display: str | None
    cards: int


def open_store(settings: Settings, clock: Clock = system_clock) -> Store:
    """The store the settings name, with its patient-id key: what the service and the CLI share."""
    configured = settings.patient_id_key.get_secret_value() if settings.patient_id_key else None
    key = load_patient_key(configured, settings.data_dir / "patient-id.key")
    return Store(settings.database, patient_key=key, clock=clock)


class Store:
    def __init__(self, url: str, *, patient_key: bytes, clock: Clock = system_clock) -> None:
        self._lock_file: Path | None = None
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = path.with_name(path.name + ".migrate.lock")
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        elif self.engine.dialect.name == "postgresql":
            event.listen(self.engine, "connect", _postgresql_utc)
        self._patient_key = patient_key
        self._now = clock
        self._swept_at = datetime.min.replace(tzinfo=UTC)
        self._sqlite_writer = threading.Lock()
        self.migrate()

    @property
    def embedded(self) -> bool:
        """SQLite: a file of this process's own, not a server across a network."""
        return self.engine.dialect.name == "sqlite"

    # -- schema ---------------------------------------------------------------------------

    @contextmanager
    def _migration_lock(self, connection: Connection) -> Iterator[None]:
        """Several workers start at once: one migrates, the others wait and find it done."""
        if self.engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(7302112026)"))
            yield
        elif self._lock_file is not None:
            with open(self._lock_file, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        else:
            yield

    def migrate(self) -> None:
        """Create a new database at the latest version, or apply the steps an older one lacks."""
        with self.engine.begin() as connection, self._migration_lock(connection):
            tables = set(inspect(connection).get_table_names())
            if "issued_cards" not in tables:
                metadata.create_all(connection)
                self._stamp(connection, MIGRATIONS[-1])
                log.info("database created at schema version %d", SCHEMA_VERSION)
                return
            if "schema_version" not in tables:  # created before versioning: version 1
                schema_version.create(connection)
                self._stamp(connection, MIGRATIONS[0])
            current = connection.execute(select(func.max(schema_version.c.version))).scalar_one()
            if current > SCHEMA_VERSION:
                raise RuntimeError(f"the database is at schema version {current}, newer than this service's")
            for step in MIGRATIONS:
                if step.version > current:
                    step.apply(connection)
                    self._stamp(connection, step)
                    log.info("database migrated to schema version %d: %s", step.version, step.description)

    def _stamp(self, connection: Connection, step: Migration) -> None:
        connection.execute(
            schema_version.insert(),
            {"version": step.version, "description": step.description, "applied_at": self._now()},
        )

    # -- writes ---------------------------------------------------------------------------

    def patient_key(self, patient_id: str) -> str:
        return hmac.new(self._patient_key, patient_id.encode(), hashlib.sha256).hexdigest()

    def _insert(self, table: Table) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def record_issued(
        self, *, service_id: str, hook_instance: str, patient_id: str, cards: Iterable[IssuedCard]
    ) -> None:
        now = self._now()
        patient = self.patient_key(patient_id)
        rows = [
            {
                "uuid": c.uuid,
                "rule_id": c.rule_id,
                "indicator": c.indicator,
                "service_id": service_id,
                "hook_instance": hook_instance,
                "patient_key": patient,
                "order_key": c.order_key,
                "issued_at": now,
            }
            for c in cards
        ]
        if rows:
            with self._writing() as connection:
                connection.execute(self._insert(issued_cards).on_conflict_do_nothing(), rows)

    @contextmanager
    def _writing(self, *, durable: bool = False) -> Iterator[Connection]:
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

    def record_feedback(self, *, service_id: str, items: list[FeedbackItem]) -> int:
        """Store each item once; returns how many were new. Raises if the write fails."""
        now = self._now()
        with self._writing(durable=True) as connection:
            cards = {
                row.uuid: row
                for row in connection.execute(
                    select(issued_cards.c.uuid, issued_cards.c.rule_id, issued_cards.c.patient_key).where(
                        issued_cards.c.uuid.in_({item.card for item in items})
                    )
                )
            }
            rows = []
            for item in items:
                reason = item.overrideReason.reason if item.overrideReason else None
                card = cards.get(item.card)
                if card is None:
                    log.warning("feedback for card %s, which this service has no record of (yet)", item.card)
                rows.append(
                    {
                        "card_uuid": item.card,
                        "service_id": service_id,
                        "rule_id": card.rule_id if card else None,
                        "patient_key": card.patient_key if card else None,
                        "outcome": item.outcome,
                        "accepted_suggestions": json.dumps([s.id for s in item.acceptedSuggestions])
                        if item.acceptedSuggestions
                        else None,
                        "override_system": reason.system if reason else None,
                        "override_code": reason.code if reason else None,
                        "override_display": reason.display if reason else None,
                        "user_comment": item.overrideReason.userComment if item.overrideReason else None,
                        "outcome_timestamp": item.outcomeTimestamp,
                        "received_at": now,
                    }
                )
            # RETURNING counts what was new on every backend (executemany rowcounts are not portable).
            inserted = connection.execute(
                self._insert(feedback).on_conflict_do_nothing().returning(feedback.c.id), rows
            ).all()
            return len(inserted)

    def sweep(self, *, retention: timedelta) -> int:
        """Forget cards and feedback older than ``retention``; returns the rows deleted."""
        cutoff = self._now() - retention
        with self._writing() as connection:
            deleted = connection.execute(feedback.delete().where(feedback.c.received_at < cutoff)).rowcount
            deleted += connection.execute(issued_cards.delete().where(issued_cards.c.issued_at < cutoff)).rowcount
        if deleted:
            log.info("retention: deleted %d card and feedback rows older than %s", deleted, cutoff.date())
        return deleted

    # -- reads ----------------------------------------------------------------------------

    def quiet(self, patient_id: str, *, accepted_within: timedelta, snooze_days: dict[str, int]) -> Quiet:
        """What this patient's stored feedback silences: accepted cards for their order, for a
        while; and rules whose warning or info card was overridden, for their snooze period."""
        now = self._now()
        patient = self.patient_key(patient_id)
        longest = max([0, *snooze_days.values()])
        since = now - max(accepted_within, timedelta(days=longest))
        query = (
            select(
                issued_cards.c.rule_id,
                issued_cards.c.order_key,
                issued_cards.c.indicator,
                feedback.c.outcome,
                feedback.c.received_at,
            )
            .join(feedback, feedback.c.card_uuid == issued_cards.c.uuid)
            .where(feedback.c.patient_key == patient, feedback.c.received_at >= since)
        )
        accepted: set[tuple[str, str]] = set()
        snoozed: set[str] = set()
        with self.engine.connect() as connection:
            for row in connection.execute(query):
                at = _utc(row.received_at)
                if row.outcome == "accepted" and accepted_within and at >= now - accepted_within:
                    accepted.add((row.rule_id, row.order_key))
                days = snooze_days.get(row.rule_id, 0)
                snoozable = row.outcome == "overridden" and row.indicator in ("warning", "info")
                if snoozable and days and at >= now - timedelta(days=days):
                    snoozed.add(row.rule_id)
        return Quiet(accepted=frozenset(accepted), snoozed=frozenset(snoozed))

    def _card_outcomes(self, start: datetime, end: datetime) -> Any:
        """Per card issued in [start, end): did it get an accepted, an overridden feedback?"""
        accepted = func.max(case((feedback.c.outcome == "accepted", 1), else_=0))
        overridden = func.max(case((feedback.c.outcome == "overridden", 1), else_=0))
        return (
            select(
                issued_cards.c.uuid,
                issued_cards.c.rule_id,
                issued_cards.c.issued_at,
                func.coalesce(accepted, 0).label("accepted"),
                # A card both accepted and overridden (two clinicians, or a change of mind) counts as accepted.
                case((func.coalesce(accepted, 0) == 1, 0), else_=func.coalesce(overridden, 0)).label("overridden"),
            )
            .outerjoin(feedback, feedback.c.card_uuid == issued_cards.c.uuid)
            .where(issued_cards.c.issued_at >= start, issued_cards.c.issued_at < end)
            .group_by(issued_cards.c.uuid, issued_cards.c.rule_id, issued_cards.c.issued_at)
            .subquery()
        )

    def outcomes(self, start: datetime, end: datetime) -> list[CardOutcomes]:
        """Cards issued in [start, end) per UTC day and rule, with their outcomes."""
        cards = self._card_outcomes(start, end)
        day = func.date(cards.c.issued_at)
        query = (
            select(
                day.label("day"),
                cards.c.rule_id,
                func.count().label("issued"),
                func.sum(cards.c.accepted).label("accepted"),
                func.sum(cards.c.overridden).label("overridden"),
            )
            .group_by(day, cards.c.rule_id)
            .order_by(day, cards.c.rule_id)
        )
        with self.engine.connect() as connection:
            return [
                CardOutcomes(
                    day=row.day if isinstance(row.day, date) else date.fromisoformat(row.day),
                    rule_id=row.rule_id,
                    issued=row.issued,
                    accepted=int(row.accepted or 0),
                    overridden=int(row.overridden or 0),
                )
                for row in connection.execute(query)
            ]

    def override_reasons(self, start: datetime, end: datetime) -> list[ReasonCount]:
        """Overridden cards issued in [start, end) per rule and reason (cards, not resent items)."""
        cards = self._card_outcomes(start, end)
        query = (
            select(
                cards.c.rule_id,
                feedback.c.override_system,
                feedback.c.override_code,
                func.max(feedback.c.override_display).label("display"),
                func.count(distinct(cards.c.uuid)).label("cards"),
            )
            .join(feedback, and_(feedback.c.card_uuid == cards.c.uuid, feedback.c.outcome == "overridden"))
            .where(cards.c.overridden == 1)
            .group_by(cards.c.rule_id, feedback.c.override_system, feedback.c.override_code)
        )
        with self.engine.connect() as connection:
            return [
                ReasonCount(row.rule_id, row.override_system, row.override_code, row.display, row.cards)
                for row in connection.execute(query)
            ]

    def unmatched_feedback(self, start: datetime, end: datetime) -> int:
        """Feedback received in [start, end) about cards this service has no record of."""
        query = (
            select(func.count())
            .select_from(feedback.outerjoin(issued_cards, issued_cards.c.uuid == feedback.c.card_uuid))
            .where(issued_cards.c.uuid.is_(None), feedback.c.received_at >= start, feedback.c.received_at < end)
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar() or 0

    def ping(self) -> int:
        """The schema version; raises unless the database answers and holds this service's tables."""
        with self.engine.connect() as connection:
            for table in metadata.sorted_tables:
                connection.execute(select(table).limit(1)).all()
            return connection.execute(select(func.max(schema_version.c.version))).scalar_one()

    def first_use(self, issuer: str, jti: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record a token id; False when it was already recorded (a replay) and has not expired."""
        with self._writing() as connection:
            if now - self._swept_at > _SWEEP_EVERY:
                connection.execute(seen_tokens.delete().where(seen_tokens.c.expires_at < now))
                self._swept_at = now
            inserted = connection.execute(
                self._insert(seen_tokens).on_conflict_do_nothing().returning(seen_tokens.c.jti),
                {"issuer": issuer, "jti": jti, "expires_at": expires_at},
            ).all()
            return len(inserted) == 1


def _postgresql_utc(connection: Any, _record: Any) -> None:
    """Days in analytics are UTC days, whatever the server's time zone."""
    cursor = connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    connection.commit()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # see Store._durable
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
