"""The database across versions and time, on the embedded SQLite file and a real PostgreSQL: a new
database at the latest schema, older ones migrated with their rows and read by today's rules, and
nothing kept past the retention period."""

from __future__ import annotations

import hashlib
import hmac
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from cds_service.storage.schema import feedback
from tests.conftest import SELECT, Clock, fixture
from tests.feedback_calls import DAY_1, DAY_2, by_rule, issued


def test_a_new_database_is_created_at_the_latest_schema_version(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    ready = make_client(database_url=database_url).get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok, schema version 8"


def _first_release_database(database_url: str, *, patient_key: str, order_key: str, outcome: str) -> None:
    """A database as the first release left it (before versioning), holding one
    cyclobenzaprine-duration card issued on DAY_1 and its feedback."""
    engine = create_engine(database_url)
    serial = "SERIAL" if engine.dialect.name == "postgresql" else "INTEGER"
    with engine.begin() as connection:
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
        connection.execute(
            text(
                "INSERT INTO issued_cards VALUES ('old-card', 'cyclobenzaprine-duration', 'back-spasm-order-select', "
                "'old-hook', :patient, :order, :at)"
            ),
            {"patient": patient_key, "order": order_key, "at": DAY_1},
        )
        connection.execute(
            text(
                "INSERT INTO feedback (card_uuid, service_id, rule_id, outcome, outcome_timestamp, received_at) "
                "VALUES ('old-card', 'back-spasm-order-select', 'cyclobenzaprine-duration', :outcome, :at, :at)"
            ),
            {"outcome": outcome, "at": DAY_1},
        )
    engine.dispose()


def test_a_database_from_before_versioning_is_migrated_and_keeps_its_rows(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    _first_release_database(
        database_url, patient_key="k", order_key="MedicationRequest/old|828348", outcome="overridden"
    )
    _old_card(database_url, "old-card-2", patient_key="k", order_key="MedicationRequest/old|828320")

    client = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()))
    assert client.get("/readyz").json()["checks"]["database"] == "ok, schema version 8"
    # Version 5 reads each old card's draft off its order key: the draft's two cards (the drug
    # changed in between) are one alert, overridden.
    duration = by_rule(client.get("/analytics", params={"from": "2026-11-20"}).json())["cyclobenzaprine-duration"]
    assert (duration["issued"], duration["overridden"], duration["cards_shown"]) == (1, 1, 2)
    # New cards are stored with the new columns beside the old ones.
    assert "cyclobenzaprine-duration" in issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")


def test_feedback_on_a_card_stored_before_version_8_is_taken_as_sent(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """Version 8 keeps the suggestions each card offered, to refuse feedback accepting another;
    an older card has no list to check against, so what its feedback accepts is stored."""
    _first_release_database(
        database_url, patient_key="k", order_key="MedicationRequest/old|828348", outcome="overridden"
    )
    client = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()))
    item = {
        "card": "old-card",
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "a suggestion of the first release"}],
        "outcomeTimestamp": "2026-11-20T10:30:00Z",
    }
    answer = client.post(f"{SELECT}/feedback", json={"feedback": [item]})
    assert answer.json() == {"received": 1, "stored": 1}
    new = issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    answer = client.post(f"{SELECT}/feedback", json={"feedback": [{**item, "card": new["uuid"]}]})
    assert [r["index"] for r in answer.json()["refused"]] == [0]  # a card stored today is checked


def test_a_resend_of_what_an_older_release_stored_unchecked_is_a_resend(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """During a rolling upgrade a process of the release before stores feedback unchecked; sent
    again to this one, it is the same item (stored once), not refused as accepting nothing the
    card offered. A card's suggestions changed by hand into something unreadable check nothing."""
    client = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()))
    card = issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "a label, not a uuid"}],
        "outcomeTimestamp": "2026-11-21T10:30:00Z",
    }
    engine = create_engine(database_url)
    with engine.begin() as connection:  # as the release before stores it: through the same table
        connection.execute(
            feedback.insert(),
            {
                "card_uuid": card["uuid"],
                "service_id": SELECT,
                "rule_id": "cyclobenzaprine-duration",
                "outcome": "accepted",
                "accepted_suggestions": '["a label, not a uuid"]',
                "outcome_timestamp": DAY_2 + timedelta(minutes=30),  # the item's outcomeTimestamp
                "received_at": DAY_2,
            },
        )
    assert client.post(f"{SELECT}/feedback", json={"feedback": [item]}).json() == {"received": 1, "stored": 0}
    later = {**item, "outcomeTimestamp": "2026-11-21T10:40:00Z"}
    assert [r["index"] for r in client.post(f"{SELECT}/feedback", json={"feedback": [later]}).json()["refused"]] == [0]
    for minute, unreadable in ((50, "not JSON"), (55, '"abc"')):  # the second JSON, but no list
        with engine.begin() as connection:
            connection.execute(text("UPDATE issued_cards SET suggestions = :value"), {"value": unreadable})
        again = {**item, "outcomeTimestamp": f"2026-11-21T10:{minute}:00Z"}
        assert client.post(f"{SELECT}/feedback", json={"feedback": [again]}).json() == {"received": 1, "stored": 1}
    engine.dispose()


def _old_card(database_url: str, uuid: str, *, patient_key: str, order_key: str) -> None:
    """One more card of DAY_1 in a first-release database."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO issued_cards VALUES (:uuid, 'cyclobenzaprine-duration', 'back-spasm-order-select', "
                "'old-hook-2', :patient, :order, :at)"
            ),
            {"uuid": uuid, "patient": patient_key, "order": order_key, "at": DAY_1 + timedelta(minutes=1)},
        )
    engine.dispose()


def test_feedback_stored_before_version_3_is_read_by_todays_rules(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """Version 3 keys feedback by patient; the migration fills the key in for what was stored.
    An old acceptance no longer silences the card (cards return while they apply); the old
    card's alert still counts as accepted."""
    patient = hmac.new(b"test-patient-key", b"harness-pt-1", hashlib.sha256).hexdigest()
    order = "MedicationRequest/request-123|828348"  # the fixture's draft and drug
    _first_release_database(database_url, patient_key=patient, order_key=order, outcome="accepted")

    later = Clock((DAY_1 + timedelta(minutes=10)).timestamp())
    client = make_client(database_url=database_url, clock=later, patient_id_key=SecretStr("test-patient-key"))
    assert client.get("/readyz").json()["checks"]["database"] == "ok, schema version 8"
    assert "cyclobenzaprine-duration" in issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    body = client.get("/analytics", params={"from": "2026-11-20", "to": "2026-11-20"}).json()
    # The old card and the new one: the same patient's draft on the same day, one accepted alert.
    assert {k: body["totals"][k] for k in ("issued", "accepted", "cards_shown")} == {
        "issued": 1,
        "accepted": 1,
        "cards_shown": 2,
    }


def test_cards_and_feedback_older_than_the_retention_period_are_deleted(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    first = make_client(database_url=database_url, clock=Clock(DAY_1.timestamp()))
    first.post(SELECT, json=fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    query = {"from": "2026-11-20", "to": "2026-11-20"}
    # The card record is written behind the answer; a reader of the same app waits for it. Another
    # app (a restart) sees it only once it is written: under a loaded suite, not always by then.
    assert first.get("/analytics", params=query).json()["totals"]["issued"] == 1
    kept = make_client(
        database_url=database_url,
        clock=Clock((DAY_1 + timedelta(days=9)).timestamp()),
        retention_days=10,
        snooze_days=10,
    )
    assert kept.get("/analytics", params=query).json()["totals"]["issued"] == 1
    swept = make_client(
        database_url=database_url,
        clock=Clock((DAY_1 + timedelta(days=11)).timestamp()),
        retention_days=10,
        snooze_days=10,
    )
    assert swept.get("/analytics", params=query).json()["totals"]["issued"] == 0


def test_the_data_directory_the_service_makes_is_its_users_alone(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    """It holds feedback's comments (the SQLite file and its write-ahead log) and the patient-id
    key: whatever the umask lets files be, no other user may list or open them."""
    data = tmp_path / "var" / "cds"
    client = make_client(data_dir=data)
    assert client.get("/readyz").status_code == 200
    assert (data / "cds-service.db").exists()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "patient-id.key").stat().st_mode) == 0o600
