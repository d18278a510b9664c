"""Schema version 14: feedback's once-only key names the client that sent the item.

Until 13 an item was one with any other of its card, outcome and ``outcomeTimestamp``
(``feedback_once``, a unique constraint): another client sending an item of that moment (a card's
uuid leaked, or guessed) was answered ``stored: 0``, as for a resend, and not stored; sent first, it
kept the card's own client's item from being stored (its snooze, its override). The key now
holds the item's issuer and tenant too (``schema.feedback``), null counting as one client (no
client: authentication off). Every stored row is kept as it is: the new key is finer than the old,
so no two rows stored under the old one meet under the new.

Kept apart from ``storage.migrations`` (the step is the longest), and, like every step, never
changed once released.
"""

from __future__ import annotations

from sqlalchemy import Connection

_KEY = "(card_uuid, outcome, outcome_timestamp, coalesce(issuer, ''), coalesce(tenant, ''))"
_INDEX = f"CREATE UNIQUE INDEX feedback_once ON feedback {_KEY}"

# The feedback table as version 13 has it, but for the constraint: SQLite cannot drop a table's
# constraint, so the table is made again and its rows copied, their ids too.
_COLUMNS = (
    "id, card_uuid, service_id, rule_id, outcome, accepted_suggestions, override_system, override_code, "
    "override_display, user_comment, outcome_timestamp, received_at, patient_key, issuer, tenant, card_sent"
)
_SQLITE_TABLE = (
    "CREATE TABLE feedback_14 (id INTEGER NOT NULL, card_uuid VARCHAR(100) NOT NULL, "
    "service_id VARCHAR(100) NOT NULL, rule_id VARCHAR(100), outcome VARCHAR(20) NOT NULL, "
    "accepted_suggestions TEXT, override_system VARCHAR(500), override_code VARCHAR(200), "
    "override_display VARCHAR(500), user_comment TEXT, outcome_timestamp DATETIME NOT NULL, "
    "received_at DATETIME NOT NULL, patient_key VARCHAR(64), issuer TEXT, tenant TEXT, card_sent TEXT, "
    "PRIMARY KEY (id))"
)


def key_feedback_by_client(connection: Connection) -> None:
    """Replace the once-only key by one that names the item's client: on PostgreSQL the
    constraint is dropped and the index made in the step's transaction (feedback's writers wait
    for it, as for any step's table); on SQLite the table is made again."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ALTER TABLE feedback DROP CONSTRAINT feedback_once")
        connection.exec_driver_sql(_INDEX)
        return
    # In the migration's own transaction (``migrations._migration_lock`` begins it on SQLite too):
    # a process stopped midway leaves feedback as it was, never a copy half made.
    connection.exec_driver_sql(_SQLITE_TABLE)
    connection.exec_driver_sql(f"INSERT INTO feedback_14 ({_COLUMNS}) SELECT {_COLUMNS} FROM feedback")
    connection.exec_driver_sql("DROP TABLE feedback")  # its indexes with it, made again below
    connection.exec_driver_sql("ALTER TABLE feedback_14 RENAME TO feedback")
    connection.exec_driver_sql("CREATE INDEX ix_feedback_card_uuid ON feedback (card_uuid)")
    connection.exec_driver_sql("CREATE INDEX ix_feedback_patient_received ON feedback (patient_key, received_at)")
    connection.exec_driver_sql(_INDEX)
