"""Schema version 15: feedback indexed for the hook call's read of what quiets a patient's cards
(``storage.quiet``).

That read took every item of the patient's received in its window (30 days, the longest snooze),
and for each "don't show again" looked for a correction through the earlier items of its card
(``feedback_once`` holds the outcome before the time): an adversarial review's 200,000 overrides
of one card made each read of its patient take about 2 s, on SQLite on the event loop, where
every other call waited as long. Two indexes: the items that may quiet a card
(``schema.QUIETING``) by patient, and every item by card and time (``schema.corrected``). No row
changes. An index already made under its name is kept: on a large PostgreSQL table an operator
may make both beforehand with ``CREATE INDEX CONCURRENTLY``, which holds up no writer
(docs/operations.md).

Kept apart from ``storage.migrations`` (its length), and, like every step, never changed once
released.
"""

from __future__ import annotations

from sqlalchemy import Connection

CARD_TIME = "ix_feedback_card_time ON feedback (card_uuid, outcome_timestamp, id)"
QUIETING = (
    "ix_feedback_quieting ON feedback (patient_key, outcome, received_at) "
    "WHERE outcome = 'accepted' OR override_code = 'dont-show-again'"
)


def index_quieting(connection: Connection) -> None:
    connection.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {CARD_TIME}")
    connection.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {QUIETING}")
