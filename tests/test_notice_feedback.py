"""Feedback on the service's own notices (the partial-history card: no rule's) is reported as such:
the sandbox offers "Dismiss" on every card with a uuid, and its feedback was counted as naming a
card the service has no record of, the sign of a client's made-up uuids or of card records lost,
when nothing was wrong. Notices are recorded apart (schema version 12), never as a rule's alert:
they count in no rule's figures, snooze nothing and are swept with the cards."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from cds_service.cli import main
from cds_service.content.cards import OVERRIDE_REASON_SYSTEM, SNOOZE_REASON
from cds_service.settings import Settings, read_settings
from cds_service.storage import writer
from tests.conftest import SELECT, TODAY, Clock, fixture, rule_ids
from tests.feedback_calls import DAY_1, by_rule, database_rows, keyed_as_before_version_14, overridden, send_feedback

DURATION = "cyclobenzaprine-duration"
PARTIAL = "partial-history"
MADE_UP = {"uuid": "f0e1d2c3-0000-4000-8000-000000000000"}
NOTICE_SAID = "1 feedback item(s) were about the service's own notices, not any rule's alert (partial-history 1)."
UNMATCHED_SAID = "feedback item(s) referred to cards the service has no record of"


def _request() -> dict[str, Any]:
    """A duration card and the partial-history notice: the medication history has a next page,
    and no fhirServer to read it from."""
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request.pop("fhirServer", None)
    request["prefetch"]["medications"]["link"] = [{"relation": "next", "url": "https://ehr.example.org/fhir/p2"}]
    return request


def _cards(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.post(SELECT, json=_request())
    assert response.status_code == 200, response.text
    cards = {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}
    assert list(cards) == [DURATION, PARTIAL]
    return cards


def _dismissed(card: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    """What the sandbox sends for "Dismiss": overridden, with a reason if one is chosen."""
    return overridden(card, reason)


def test_feedback_on_a_notice_is_notice_feedback_and_a_made_up_uuid_is_still_unmatched(
    make_client: Callable[..., TestClient], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(database_url=database_url)
    cards = _cards(client)
    send_feedback(client, _dismissed(cards[PARTIAL]), _dismissed(MADE_UP))
    assert "1 item(s) name cards this service has no record of (first: item 1)" in caplog.text  # not the notice
    figures = client.get("/analytics").json()
    assert figures["notice_feedback"] == {PARTIAL: 1}
    assert figures["unmatched_feedback"] == 1  # the made-up uuid alone
    # The rule's figures are the duration card's alone: the notice is no alert, its dismissal no override.
    assert [rule["rule_id"] for rule in figures["rules"]] == [DURATION]
    duration = by_rule(figures)[DURATION]
    assert (duration["issued"], duration["overridden"], duration["cards_shown"]) == (1, 0, 1)
    assert (figures["totals"]["issued"], figures["totals"]["overridden"]) == (1, 0)
    # Recorded with its code and service, nothing of the patient's.
    [row] = database_rows(database_url, "SELECT * FROM issued_notices")
    assert (row.uuid, row.code, row.service_id) == (cards[PARTIAL]["uuid"], PARTIAL, "back-spasm-order-select")
    assert not {"patient_key", "patient_id", "hook_instance"} & set(row._mapping)


def test_a_notice_dismissed_with_dont_show_again_snoozes_nothing(client: TestClient) -> None:
    """A client may send any reason: on a notice, "don't show again" silences neither the notice
    nor the rule's card, and the rule's next card is still counted as the same alert."""
    cards = _cards(client)
    item = _dismissed(cards[PARTIAL])
    item["overrideReason"] = {"reason": {"system": OVERRIDE_REASON_SYSTEM, "code": SNOOZE_REASON}}
    send_feedback(client, item)
    assert rule_ids(client.post(SELECT, json=_request()).json()) == [DURATION, PARTIAL]
    figures = client.get("/analytics").json()
    assert figures["notice_feedback"] == {PARTIAL: 1} and figures["unmatched_feedback"] == 0
    duration = by_rule(figures)[DURATION]
    assert (duration["issued"], duration["overridden"], duration["cards_shown"]) == (1, 0, 2)
    assert duration["override_reasons"] == []


def test_feedback_on_a_notice_before_its_record_is_written_is_still_notice_feedback(
    make_client: Callable[..., TestClient], postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes on PostgreSQL: the feedback reaches the other one, and the database, before
    the notice's record is written behind the answer. It is matched by uuid when counted."""
    monkeypatch.setattr(writer, "WRITE_DELAY_SECONDS", 30.0)  # written only when a reader asks
    answering = make_client(database_url=postgresql_url)
    other = make_client(database_url=postgresql_url)
    notice = _cards(answering)[PARTIAL]
    send_feedback(other, _dismissed(notice))
    assert database_rows(postgresql_url, "SELECT count(*) FROM issued_notices") == [(0,)]
    figures = answering.get("/analytics").json()  # the records written first
    assert (figures["notice_feedback"], figures["unmatched_feedback"]) == ({PARTIAL: 1}, 0)


def test_the_report_command_and_page_say_notice_feedback_apart_from_the_unmatched(
    make_client: Callable[..., TestClient],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = make_client()
    send_feedback(client, _dismissed(_cards(client)[PARTIAL]))
    page = client.get("/analytics/report").text
    assert NOTICE_SAID.replace("'", "&#x27;") in page and UNMATCHED_SAID not in page
    client.__exit__(None, None, None)  # every record written, the database closed
    for name in [name for name in os.environ if name.startswith("CDS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CDS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)  # not another test's, cached
    assert main(["report", "--from", TODAY.isoformat(), "--to", TODAY.isoformat()]) == 0
    printed = capsys.readouterr().out
    assert NOTICE_SAID in printed.splitlines() and UNMATCHED_SAID not in printed


def test_notices_are_swept_with_the_cards_after_the_retention_period(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    first = make_client(database_url=database_url, clock=Clock(DAY_1.timestamp()))
    _cards(first)
    assert first.get("/analytics", params={"from": "2026-11-20"}).json()["totals"]["issued"] == 1  # written
    assert database_rows(database_url, "SELECT count(*) FROM issued_notices") == [(1,)]
    make_client(database_url=database_url, clock=Clock((DAY_1 + timedelta(days=11)).timestamp()), retention_days=10)
    assert database_rows(database_url, "SELECT count(*) FROM issued_notices") == [(0,)]


def test_a_database_of_the_release_before_gains_the_notices_table(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """Version 11, as the release before last left it: migrated, and its feedback on a notice (stored
    before the upgrade, the notice never recorded) stays unmatched, as it was reported."""
    before = make_client(database_url=database_url)
    send_feedback(before, _dismissed(_cards(before)[PARTIAL]))
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE issued_notices"))
        keyed_as_before_version_14(connection)
        connection.execute(text("ALTER TABLE feedback DROP COLUMN card_sent"))
        connection.execute(text("UPDATE schema_version SET version = 11"))  # created at 12: its one row
    engine.dispose()
    upgraded = make_client(database_url=database_url)
    assert upgraded.get("/readyz").json()["checks"]["database"] == "ok, schema version 15"
    assert (
        upgraded.get("/analytics").json()["unmatched_feedback"],
        upgraded.get("/analytics").json()["notice_feedback"],
    ) == (1, {})
    send_feedback(upgraded, _dismissed(_cards(upgraded)[PARTIAL]))
    figures = upgraded.get("/analytics").json()
    assert (figures["notice_feedback"], figures["unmatched_feedback"]) == ({PARTIAL: 1}, 1)
