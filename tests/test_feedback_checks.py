"""Feedback that cannot be what a clinician did with a card (an adversarial review): an item dated
ahead of the service's clock (the latest item about a card is the clinician's choice: one dated
2999 overruled every later one, for ever), a local time naming no zone excepted as far as UTC+14,
and a year outside 1970 to 2999 once in UTC (checked as written, 2999-12-31T23:59:59-14:00 was
stored as 3000). And what is taken as sent: an item carrying the other outcome's field (CDS Hooks
ties neither to an outcome), and feedback sent to the service that did not issue its card (stored
as the issuing service's)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.settings import Settings
from tests.conftest import NOON, SELECT, SIGN, Clock, fixture, for_patient, rule_ids
from tests.feedback_calls import database_rows

DURATION = "cyclobenzaprine-duration"
NAME = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
REASONS = "urn:back-spasm-cds:override-reason"
AT_NOON = "2026-11-21T12:00:00Z"  # the tests' clock (``NOON``)


def _card(client: TestClient, patient: str) -> dict[str, Any]:
    response = client.post(SELECT, json=for_patient(fixture(NAME), patient))
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    return card


def _overridden(card: dict[str, Any], stamp: str, code: str = "already-addressed") -> dict[str, Any]:
    reason = {"reason": {"system": REASONS, "code": code}}
    return {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": stamp, "overrideReason": reason}


def _send(client: TestClient, *items: dict[str, Any], service: str = SELECT) -> Any:
    return client.post(f"{service}/feedback", json={"feedback": list(items)})


def _refused(response: Any, field: str) -> str:
    """The 400's diagnostics, naming ``field`` alone."""
    assert response.status_code == 400, response.text
    [issue] = response.json()["issue"]
    assert issue["expression"] == [field]
    return str(issue["diagnostics"])


def _stored(settings: Settings) -> list[Any]:
    url = f"sqlite:///{settings.data_dir / 'cds-service.db'}"
    return database_rows(url, "SELECT override_code, outcome_timestamp FROM feedback ORDER BY id")


def _shown(client: TestClient, patient: str) -> list[str]:
    response = client.post(SELECT, json=for_patient(fixture(NAME), patient))
    assert response.status_code == 200, response.text
    return rule_ids(response.json())


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param("2999-01-01T00:00:00Z", id="2999"),
        pytest.param("2026-11-21T14:00:00Z", id="a-clock-2-hours-fast"),
        pytest.param("2026-11-21T14:00:00+02:00", id="noon-in-utc-plus-2-is-not-ahead"),
        pytest.param("2026-11-21T12:05:01Z", id="a-second-past-the-leeway"),
    ],
)
def test_an_item_dated_ahead_of_the_services_clock_is_400_and_the_clinicians_choice_then_counts(
    client: TestClient, settings: Settings, stamp: str
) -> None:
    """More than 5 minutes ahead of the service's clock is refused, the whole batch, as a date
    that is no date: stored, the item overruled the clinician's "don't show again" that followed."""
    card = _card(client, "pt-dated-ahead")
    first = _send(client, _overridden(card, stamp))
    if stamp.endswith("+02:00"):  # 12:00 UTC: the service's own time
        assert first.json() == {"received": 1, "stored": 1}, first.text
    else:
        diagnostics = _refused(first, "feedback.0.outcomeTimestamp")
        assert diagnostics.startswith("feedback.0.outcomeTimestamp: is after 2026-11-21T12:05:00Z, more than 5 minutes")
        assert _stored(settings) == []
    later = _send(client, _overridden(card, "2026-11-21T12:01:00Z", code="dont-show-again"))
    assert later.json() == {"received": 1, "stored": 1}
    assert _shown(client, "pt-dated-ahead") == []  # snoozed: the clinician's latest choice


def test_the_leeway_is_from_the_services_clock_as_it_moves(make_client: Callable[..., TestClient]) -> None:
    clock = Clock(NOON)
    client = make_client(clock=clock)
    card = _card(client, "pt-leeway")
    assert _send(client, _overridden(card, "2026-11-21T12:05:00Z")).json() == {"received": 1, "stored": 1}
    ahead = _overridden(card, "2026-11-21T12:30:00Z", code="dont-show-again")
    _refused(_send(client, ahead), "feedback.0.outcomeTimestamp")
    clock.set(minutes=25)
    assert _send(client, ahead).json() == {"received": 1, "stored": 1}


@pytest.mark.parametrize(
    ("stamp", "taken"),
    [
        ("1970-01-01T00:00:00+14:00", False),  # 1969-12-31T10:00:00Z
        ("1970-01-01T00:00:00Z", True),
        ("1970-01-01T00:00:00-01:00", True),
        ("0001-01-01T00:00:00+14:00", False),  # before the calendar's first day in UTC: no 500
    ],
)
def test_the_first_year_is_checked_in_utc(client: TestClient, settings: Settings, stamp: str, taken: bool) -> None:
    card = _card(client, "pt-1970")
    response = _send(client, _overridden(card, stamp))
    if taken:
        assert response.json() == {"received": 1, "stored": 1}, response.text
    else:
        diagnostics = _refused(response, "feedback.0.outcomeTimestamp")
        assert diagnostics == "feedback.0.outcomeTimestamp: is not a plausible time (years 1970 to 2999, in UTC)"
        assert _stored(settings) == []


def test_the_last_year_is_checked_in_utc(make_client: Callable[..., TestClient], settings: Settings) -> None:
    """A service whose clock reads the last minutes of 2999 (no other is near the bound)."""
    client = make_client(clock=Clock(datetime(2999, 12, 31, 23, 58, tzinfo=UTC).timestamp()))
    card = {"uuid": "f0e1d2c3-0000-4000-8000-000000000000"}  # no card of this service's: stored as sent
    response = _send(client, _overridden(card, "2999-12-31T23:59:59-00:02"))  # 3000-01-01T00:01:59Z
    diagnostics = _refused(response, "feedback.0.outcomeTimestamp")
    assert diagnostics == "feedback.0.outcomeTimestamp: is not a plausible time (years 1970 to 2999, in UTC)"
    assert _send(client, _overridden(card, "2999-12-31T23:59:59Z")).json() == {"received": 1, "stored": 1}
    assert len(_stored(settings)) == 1


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param("2026-11-21T15:00:00", id="no-zone-3-hours-ahead"),  # 15:00 in UTC+3, noon in UTC
        pytest.param("2026-11-22T02:05:00", id="no-zone-14-hours-5-minutes-ahead"),  # UTC+14's, to the minute
    ],
)
def test_a_local_time_naming_no_zone_is_taken_as_far_as_utc_plus_14(
    client: TestClient, settings: Settings, stamp: str
) -> None:
    """Read as UTC, an EHR east of UTC sending its local time with no offset was "ahead", and its
    whole batch a 400: the clinician's "don't show again" lost."""
    card = _card(client, "pt-local-time")
    sent = _send(client, _overridden(card, stamp, code="dont-show-again"))
    assert sent.json() == {"received": 1, "stored": 1}, sent.text
    assert _stored(settings) == [("dont-show-again", f"{stamp.replace('T', ' ')}.000000")]  # as UTC
    assert _shown(client, "pt-local-time") == []  # snoozed


@pytest.mark.parametrize(
    ("stamp", "message"),
    [
        pytest.param(
            "2026-11-22T03:00:00",
            "is after 2026-11-22T02:05:00Z, more than 14 hours 5 minutes ahead of the service's clock "
            "(no zone named: read as UTC)",
            id="no-zone-15-hours-ahead",
        ),
        pytest.param(
            "2026-11-21T12:10:00Z",
            "is after 2026-11-21T12:05:00Z, more than 5 minutes ahead of the service's clock",
            id="utc-10-minutes-ahead",
        ),
        pytest.param(
            "2026-11-21T15:10:00+03:00",
            "is after 2026-11-21T12:05:00Z, more than 5 minutes ahead of the service's clock",
            id="an-offset-keeps-5-minutes",
        ),
    ],
)
def test_a_time_further_ahead_is_400(client: TestClient, settings: Settings, stamp: str, message: str) -> None:
    card = _card(client, "pt-too-far-ahead")
    diagnostics = _refused(_send(client, _overridden(card, stamp)), "feedback.0.outcomeTimestamp")
    assert diagnostics.startswith(f"feedback.0.outcomeTimestamp: {message}: "), diagnostics
    assert _stored(settings) == []


def test_the_bound_is_told_in_utc_whatever_zone_the_clock_reads(make_client: Callable[..., TestClient]) -> None:
    """A clock giving its instant in another zone: the bound was written with its digits and a Z."""
    client = make_client(clock=lambda: datetime(2026, 11, 21, 14, tzinfo=timezone(timedelta(hours=2))))
    card = {"uuid": "f0e1d2c3-0000-4000-8000-000000000000"}
    diagnostics = _refused(_send(client, _overridden(card, "2026-11-21T13:00:00Z")), "feedback.0.outcomeTimestamp")
    assert diagnostics.startswith("feedback.0.outcomeTimestamp: is after 2026-11-21T12:05:00Z,"), diagnostics


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"outcome": "accepted"}, id="accepted-with-an-override-reason"),
        pytest.param({}, id="overridden-accepting-a-suggestion"),
    ],
)
def test_an_item_carrying_the_other_outcomes_field_is_stored_as_sent(
    client: TestClient, settings: Settings, changes: dict[str, Any]
) -> None:
    """CDS Hooks makes overrideReason optional, tying neither it nor acceptedSuggestions to an
    outcome: such an item was a 400, the whole batch lost. Only an overridden item snoozes."""
    card = _card(client, "pt-both-outcomes")
    item = _overridden(card, AT_NOON, code="dont-show-again") | changes
    item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    sent = _send(client, _overridden(card, "2026-11-21T11:59:00Z"), item)
    assert sent.json() == {"received": 2, "stored": 2}, sent.text
    assert [code for code, _ in _stored(settings)] == ["already-addressed", "dont-show-again"]
    snoozed = item["outcome"] == "overridden"
    assert _shown(client, "pt-both-outcomes") == ([] if snoozed else [DURATION])


def test_feedback_sent_to_the_other_service_is_stored_as_the_issuing_services_and_counts(
    client: TestClient, settings: Settings
) -> None:
    """An order-select card's "don't show again" posted to order-sign's endpoint is the
    clinician's choice all the same: stored (as order-select's: snoozes and reports find feedback
    by its card), it snoozes the card; sent again to order-select's, it is a resend. Refused, it
    was lost: clients that follow the specification read the 200, not the refused list."""
    card = _card(client, "pt-other-service")
    made_up = {"uuid": "f0e1d2c3-0000-4000-8000-000000000000"}
    snooze = _overridden(card, AT_NOON, "dont-show-again")
    sent = _send(client, _overridden(made_up, AT_NOON), snooze, service=SIGN)
    assert sent.json() == {"received": 2, "stored": 2}, sent.text
    assert _shown(client, "pt-other-service") == []  # snoozed
    assert _send(client, snooze).json() == {"received": 1, "stored": 0}  # the same item
    url = f"sqlite:///{settings.data_dir / 'cds-service.db'}"
    assert database_rows(url, "SELECT card_uuid, service_id FROM feedback ORDER BY id") == [
        (made_up["uuid"], "back-spasm-order-sign"),  # no record of it: the service it was sent to
        (card["uuid"], "back-spasm-order-select"),
    ]
