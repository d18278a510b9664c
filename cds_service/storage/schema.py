"""The database schema: its tables, as the latest migration (``storage.migrations``) leaves them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

metadata = MetaData()


def as_utc(value: datetime) -> datetime:
    """A datetime read back: SQLite hands them back without their zone; everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_UNKEYED = text("keyed IS NULL")
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
    # JSON {suggestion uuid: order key once accepted} for dose-change suggestions (the 5 mg swap
    # changes the drug, so the accepted card's own key no longer names the draft). Version 4.
    Column("keys_after", Text),
    # The draft order the card is about: with the patient, the rule and the day, what makes
    # cards one alert (reporting). Filled in from order_key by v5.
    Column("draft", String(300)),
    # A hash of what the card said about which draft (rule, the draft's rule-relevant facts, the
    # card's text): order-sign does not repeat a non-critical card order-select showed for the
    # unchanged draft the same day. Null before version 5 (never matched). Version 5.
    Column("draft_hash", String(64)),
    # The trusted client the card was issued to: its issuer and configured tenant (analytics show
    # a client its own cards). Null with authentication off, and before version 6: such cards
    # belong to no client, and only an operator (or a service without authentication) sees them.
    Column("issuer", Text),
    Column("tenant", Text),
    # JSON [suggestion uuid, ...]: what the card offered, so that feedback accepting a suggestion
    # it did not offer is refused, not stored as a click on nothing, and, stored unchecked, not
    # counted as one (``storage.offered``). Null before version 8 (then any id is taken as sent). Version 8.
    Column("suggestions", Text),
    # 1: order_key, draft, draft_hash and keys_after's values are keyed hashes (``Store.pseudonym``),
    # as patient_key is: an EHR may build an order's id from its patient's. Null: written as sent,
    # before version 9 or by an older release beside this one, and keyed by ``storage.keyed``.
    Column("keyed", SmallInteger),
    # JSON [identity, ...]: what the card named besides the ordered drug (``Finding.subject``,
    # drug ingredients and condition codes, no patient's identifiers); a snooze of the card holds
    # for that alone. Null where its rule's cards name nothing else, and before version 11: such
    # a snooze silences none of the cards of a rule that names a subject (``Quiet.snoozes``). Version 11.
    Column("subject", Text),
    Index("ix_issued_cards_patient_rule", "patient_key", "rule_id"),
    Index("ix_issued_cards_issuer_issued", "issuer", "issued_at"),
    # Only the records to key (``storage.keyed``): empty once an upgrade is done, nothing to scan.
    Index("ix_issued_cards_unkeyed", "uuid", sqlite_where=_UNKEYED, postgresql_where=_UNKEYED),
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
    # The client that sent it (version 6), as for issued cards: feedback is about a card only when
    # its client sent it (``from_its_client``); about no card of its sender's (none on record, or
    # another client's), it is counted for its sender only.
    Column("issuer", Text),
    Column("tenant", Text),
    # The card id as the client sent it, when card_uuid is not that: a UUID sent in upper or mixed
    # case is stored in lower case, which names its card (``storage.text.card_id``). Version 13.
    Column("card_sent", Text),
    Index("ix_feedback_patient_received", "patient_key", "received_at"),
    # A card's items by time: its latest (what the clinician chose) is one look away. Version 15.
    Index("ix_feedback_card_time", "card_uuid", "outcome_timestamp", "id"),
)


def quieting(items: FromClause) -> ColumnElement[bool]:
    """The feedback (``items``: the table, or a name for it) that can quiet a card
    (``storage.quiet``): an acceptance (a swap accepted today) or a "don't show again"
    (content.cards.SNOOZE_REASON). Its constants written out, not bound: only a statement that
    names this condition as it stands may use the index of it below."""
    return or_(
        items.c.outcome == literal_column("'accepted'"),
        items.c.override_code == literal_column("'dont-show-again'"),
    )


# Only those items, by patient: however many other items a patient's cards have, the hook call's
# read looks at none of them (an adversarial review: 200,000 overrides of one card made each read
# of its patient take 2 s). Version 15.
Index(
    "ix_feedback_quieting",
    feedback.c.patient_key,
    feedback.c.outcome,
    feedback.c.received_at,
    sqlite_where=quieting(feedback),
    postgresql_where=quieting(feedback),
)
# Clients resend feedback: the same card, outcome and time from the same client is one item. Its
# client is part of it since version 14: without it, another client's item of that moment (a
# uuid leaked, or guessed) was taken for a resend and not stored: sent first, it masked the
# client's own.
# No client (authentication off) counts as one here, as in ``from_its_client``: a unique index
# takes nulls for distinct, and would store every resend again (an issuer is never empty).
# Every release's writer inserts with ON CONFLICT DO NOTHING, which names no key.
Index(
    "feedback_once",
    feedback.c.card_uuid,
    feedback.c.outcome,
    feedback.c.outcome_timestamp,
    func.coalesce(feedback.c.issuer, ""),
    func.coalesce(feedback.c.tenant, ""),
    unique=True,
)


def from_its_client(issued: Table, items: FromClause = feedback) -> ColumnElement[bool]:
    """Feedback sent by the client (issuer and tenant) ``issued``'s card or notice went to: the
    only feedback that is about it. A uuid is no secret (a client may leak one, or guess it): an
    item of another client's about a card counted as the card's client's own, and its "don't show
    again" snoozed that client's patient (an adversarial review). Another client's item is kept,
    and counted as its sender's feedback about no card on record (``unmatched_feedback``). With
    authentication off, every row's client is null: every item is about its card."""
    return and_(
        items.c.issuer.is_not_distinct_from(issued.c.issuer),
        items.c.tenant.is_not_distinct_from(issued.c.tenant),
    )


# The service's own notices (``pipeline.notices``, the card-limit card): no rule's alert, so not
# in issued_cards, where every reader (analytics, snoozes, order-sign's repeats) takes a card for
# one. Kept so that feedback on a notice is known for what it is (version 12). No patient's key.
issued_notices = Table(
    "issued_notices",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("code", String(100), nullable=False),  # the notice's topic code: "partial-history"
    Column("service_id", String(100), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False, index=True),
    Column("issuer", Text),
    Column("tenant", Text),
)

# Client JWT ids seen, kept until the token expires: a replayed token is refused by every
# process that shares this database.
seen_tokens = Table(
    "seen_tokens",
    metadata,
    Column("issuer", String(500), primary_key=True),  # TrustedClient.iss is bounded to match
    Column("jti", String(256), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# The patient-id key the stored hashes were made with, as a fingerprint (one row, ``id`` 1): a
# process with another key recognised no stored patient and said nothing (an operator's review).
patient_key_check = Table(
    "patient_key_check",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", String(64), nullable=False),
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


def quiet_channel(schema: str) -> str:
    """The channel (an SQL expression) of the changes to feedback in ``schema`` (one too): one a
    schema, so deployments and test runs sharing a database hear only their own; an identifier,
    at most 63 bytes."""
    return f"'cds_quiet_' || left(md5({schema}), 16)"


def answers_for_writes(connection: Connection) -> int:
    """The schema version, once every table was read and the four written ones took an INSERT
    (of no rows, rolled back); raises otherwise. A read-only standby, a revoked grant or a column
    gone refuse the INSERT as they would a card record, so the database is not said to be back
    (``/readyz``, the gate's probe) while it still refuses them. SQLite's INSERT takes the file's
    write lock: held by another connection, that says the file takes writes, and is not waited
    for (a probe that queued behind a long write marked the database down)."""
    for table in metadata.sorted_tables:
        connection.execute(select(table).limit(1)).all()
    version = int(connection.execute(select(func.max(schema_version.c.version))).scalar_one())
    sqlite = connection.dialect.name == "sqlite"
    waits = connection.exec_driver_sql("PRAGMA busy_timeout").scalar() if sqlite else None
    try:
        if sqlite:
            connection.exec_driver_sql("PRAGMA busy_timeout = 0")
        for table in (issued_cards, issued_notices, feedback, seen_tokens):
            connection.execute(table.insert().from_select(list(table.c), select(table).where(false())))
    except OperationalError as error:
        if getattr(error.orig, "sqlite_errorname", None) != "SQLITE_BUSY":
            raise
    finally:
        connection.rollback()
        if sqlite:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(waits or 0)}")
    return version
