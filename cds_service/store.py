"""Durable storage of the cards the service issued and the feedback clinicians gave.

SQLAlchemy Core over an embedded SQLite file by default. Patient ids are never stored: a
keyed hash (HMAC-SHA256) lets the service recognise the same patient again without anyone
with the database being able to reverse or dictionary-attack it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from cds_service.evaluate import IssuedCard
from cds_service.feedback import FeedbackItem

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
    # Clients resend feedback: the same card, outcome and time is one item.
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="feedback_once"),
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

# How often expired token ids are swept out.
_SWEEP_EVERY = timedelta(minutes=1)


def _now() -> datetime:
    return datetime.now(UTC)


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


class Store:
    def __init__(self, url: str, *, patient_key: bytes) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._patient_key = patient_key
        self._swept_at = datetime.min.replace(tzinfo=UTC)
        metadata.create_all(self.engine)

    def patient_key(self, patient_id: str) -> str:
        return hmac.new(self._patient_key, patient_id.encode(), hashlib.sha256).hexdigest()

    def _insert(self, table: Table) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def record_issued(
        self, *, service_id: str, hook_instance: str, patient_id: str, cards: Iterable[IssuedCard]
    ) -> None:
        now = _now()
        patient = self.patient_key(patient_id)
        rows = [
            {
                "uuid": c.uuid,
                "rule_id": c.rule_id,
                "service_id": service_id,
                "hook_instance": hook_instance,
                "patient_key": patient,
                "order_key": c.order_key,
                "issued_at": now,
            }
            for c in cards
        ]
        if rows:
            with self.engine.begin() as connection:
                connection.execute(self._insert(issued_cards).on_conflict_do_nothing(), rows)

    def record_feedback(self, *, service_id: str, items: list[FeedbackItem]) -> int:
        """Store each item once; returns how many were new. Raises if the write fails."""
        now = _now()
        with self.engine.begin() as connection:
            rules = dict(
                connection.execute(
                    select(issued_cards.c.uuid, issued_cards.c.rule_id).where(
                        issued_cards.c.uuid.in_({item.card for item in items})
                    )
                ).all()
            )
            rows = []
            for item in items:
                reason = item.overrideReason.reason if item.overrideReason else None
                if item.card not in rules:
                    log.warning("feedback for card %s, which this service has no record of", item.card)
                rows.append(
                    {
                        "card_uuid": item.card,
                        "service_id": service_id,
                        "rule_id": rules.get(item.card),
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

    def accepted_keys(self, patient_id: str, *, within: timedelta) -> set[tuple[str, str]]:
        """(rule id, order key) of this patient's cards accepted within ``within``."""
        since = _now() - within
        query = (
            select(issued_cards.c.rule_id, issued_cards.c.order_key)
            .join(feedback, feedback.c.card_uuid == issued_cards.c.uuid)
            .where(
                issued_cards.c.patient_key == self.patient_key(patient_id),
                feedback.c.outcome == "accepted",
                feedback.c.received_at >= since,
            )
        )
        with self.engine.connect() as connection:
            return {(row.rule_id, row.order_key) for row in connection.execute(query)}

    def ping(self) -> None:
        """Raises unless the database answers and holds this service's tables."""
        with self.engine.connect() as connection:
            for table in metadata.sorted_tables:
                connection.execute(select(table).limit(1)).all()

    def first_use(self, issuer: str, jti: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record a token id; False when it was already recorded (a replay) and has not expired."""
        with self.engine.begin() as connection:
            if now - self._swept_at > _SWEEP_EVERY:
                connection.execute(seen_tokens.delete().where(seen_tokens.c.expires_at < now))
                self._swept_at = now
            inserted = connection.execute(
                self._insert(seen_tokens).on_conflict_do_nothing().returning(seen_tokens.c.jti),
                {"issuer": issuer, "jti": jti, "expires_at": expires_at},
            ).all()
            return len(inserted) == 1

    def feedback_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(select(feedback).order_by(feedback.c.id))]
        for row in rows:
            row["outcome_timestamp"] = _utc(row["outcome_timestamp"])
            row["received_at"] = _utc(row["received_at"])
        return rows


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
