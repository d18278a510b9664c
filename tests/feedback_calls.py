"""Calls shared by the storage and analytics tests: cards issued on a test day, feedback sent on them,
the analytics read back per rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, text

from tests.conftest import SELECT, fixture

FEEDBACK = f"{SELECT}/feedback"
DAY_1 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DAY_2 = DAY_1 + timedelta(days=1)


def issued(client: TestClient, name: str) -> dict[str, dict[str, Any]]:
    """The cards of the fixture ``name`` at order-select, by rule id."""
    response = client.post(SELECT, json=fixture(name))
    assert response.status_code == 200, response.text
    return {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}


def send_feedback(client: TestClient, *items: dict[str, Any]) -> None:
    response = client.post(FEEDBACK, json={"feedback": list(items)})
    assert response.status_code == 200, response.text


def overridden(card: dict[str, Any], code: str | None = None) -> dict[str, Any]:
    """A feedback item overriding ``card`` at DAY_1 (the earliest the tests' clocks read: a time
    after the service's clock is refused), with the override reason ``code`` if given."""
    item: dict[str, Any] = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-20T10:00:00Z"}
    if code:
        item["overrideReason"] = {"reason": {"system": "urn:back-spasm-cds:override-reason", "code": code}}
    return item


def by_rule(analytics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An /analytics answer's rows, by rule id."""
    return {rule["rule_id"]: rule for rule in analytics["rules"]}


def database_rows(database_url: str, query: str) -> list[Any]:
    """What the database holds, read as an operator would, on either backend."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(query)))
    finally:
        engine.dispose()


def keyed_as_before_version_14(connection: Connection) -> None:
    """feedback's once-only key as releases before schema version 14 made it: a constraint of the
    card, outcome and time, no client's (SQLite drops no constraint: the table is made again)."""
    connection.execute(text("DROP INDEX feedback_once"))
    old_key = "CONSTRAINT feedback_once UNIQUE (card_uuid, outcome, outcome_timestamp)"
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"ALTER TABLE feedback ADD {old_key}"))
        return
    made = connection.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'feedback'"))
    table = made.scalar_one().rstrip().removesuffix(")")
    connection.execute(text("ALTER TABLE feedback RENAME TO feedback_now"))
    connection.execute(text(f"{table}, {old_key})"))
    connection.execute(text("INSERT INTO feedback SELECT * FROM feedback_now"))
    connection.execute(text("DROP TABLE feedback_now"))
    connection.execute(text("CREATE INDEX ix_feedback_card_uuid ON feedback (card_uuid)"))
    connection.execute(text("CREATE INDEX ix_feedback_patient_received ON feedback (patient_key, received_at)"))


def first_release_tables(connection: Connection) -> None:
    """The tables as the first release made them, before versioning (an upgrade's start)."""
    serial = "SERIAL" if connection.dialect.name == "postgresql" else "INTEGER"
    connection.execute(
        text(
            "CREATE TABLE issued_cards (uuid VARCHAR(64) PRIMARY KEY, rule_id VARCHAR(100) NOT NULL, "
            "service_id VARCHAR(100) NOT NULL, hook_instance VARCHAR(200) NOT NULL, "
            "patient_key VARCHAR(64) NOT NULL, order_key VARCHAR(300) NOT NULL, "
            "issued_at TIMESTAMP WITH TIME ZONE NOT NULL)"
        )
    )
    connection.execute(
        text(
            f"CREATE TABLE feedback (id {serial} PRIMARY KEY, card_uuid VARCHAR(100) NOT NULL, "
            "service_id VARCHAR(100) NOT NULL, rule_id VARCHAR(100), outcome VARCHAR(20) NOT NULL, "
            "accepted_suggestions TEXT, override_system VARCHAR(500), override_code VARCHAR(200), "
            "override_display VARCHAR(500), user_comment TEXT, "
            "outcome_timestamp TIMESTAMP WITH TIME ZONE NOT NULL, received_at TIMESTAMP WITH TIME ZONE NOT NULL, "
            "CONSTRAINT feedback_once UNIQUE (card_uuid, outcome, outcome_timestamp))"
        )
    )
    connection.execute(
        text(
            "CREATE TABLE seen_tokens (issuer VARCHAR(500), jti VARCHAR(256), "
            "expires_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (issuer, jti))"
        )
    )
