"""A card's uuid in feedback names its card whatever its case (RFC 4122: UUIDs are
case-insensitive on input). Sent in upper case, it was stored as sent and counted as feedback
about a card the service has no record of: its snooze snoozed nothing. It is stored in lower
case now, as the service writes its uuids, and what the client sent is kept beside it
(``feedback.card_sent``, schema version 13, which mends what earlier releases stored)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.conftest import SELECT, fixture, rule_ids
from tests.feedback_calls import FEEDBACK, database_rows, issued, keyed_as_before_version_14, overridden, send_feedback

DURATION = "cyclobenzaprine-duration"
WARNING = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"


def _call_again(client: TestClient) -> list[str]:
    response = client.post(SELECT, json={**fixture(WARNING), "hookInstance": "d1577c69-0000-4000-8000-000000000002"})
    assert response.status_code == 200, response.text
    return rule_ids(response.json())


def _figures(client: TestClient) -> tuple[int, int]:
    body = client.get("/analytics", params={"from": "2026-11-01"}).json()
    return body["totals"]["overridden"], body["unmatched_feedback"]


def test_a_card_uuid_in_upper_case_names_its_card(make_client: Callable[..., TestClient], database_url: str) -> None:
    client = make_client(database_url=database_url)
    card = issued(client, WARNING)[DURATION]
    shouted = {**overridden(card, "dont-show-again"), "card": card["uuid"].upper()}
    assert client.post(FEEDBACK, json={"feedback": [shouted]}).json() == {"received": 1, "stored": 1}
    assert _call_again(client) == []  # snoozed
    assert _figures(client) == (1, 0)
    assert database_rows(database_url, "SELECT card_uuid, card_sent FROM feedback") == [
        (card["uuid"], card["uuid"].upper())
    ]
    # The same item, resent as the card was issued: stored once.
    resent = {**shouted, "card": card["uuid"]}
    assert client.post(FEEDBACK, json={"feedback": [resent]}).json() == {"received": 1, "stored": 0}


def test_a_card_uuid_an_earlier_release_stored_in_upper_case_names_its_card_once_migrated(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """Version 12, as the release before left it: the item stored as sent, with no card's rule
    or patient. The migration stores it in lower case, joined to its card, the sent id kept."""
    before = make_client(database_url=database_url)
    card = issued(before, WARNING)[DURATION]
    send_feedback(before, overridden(card, "dont-show-again"))
    other = "0C0FFEE0-0000-4000-8000-00000000ABCD"  # names no card: stays as sent
    send_feedback(before, {**overridden(card), "card": other})
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE feedback SET card_uuid = upper(card_uuid), rule_id = NULL, patient_key = NULL"))
        keyed_as_before_version_14(connection)
        connection.execute(text("ALTER TABLE feedback DROP COLUMN card_sent"))
        connection.execute(text("UPDATE schema_version SET version = 12"))  # created at the last: its one row
    engine.dispose()
    upgraded = make_client(database_url=database_url)
    assert upgraded.get("/readyz").json()["checks"]["database"] == "ok, schema version 15"
    assert _call_again(upgraded) == []  # the snooze holds
    assert _figures(upgraded) == (1, 1)
    rows = database_rows(database_url, "SELECT card_uuid, card_sent, rule_id FROM feedback ORDER BY card_uuid")
    assert sorted(rows) == sorted([(other, None, None), (card["uuid"], card["uuid"].upper(), DURATION)])
