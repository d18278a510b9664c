"""Snooze: a clinician who overrides a warning or info card is not shown that rule again for the same
patient for a while (``CDS_SNOOZE_DAYS``, or the rule's own ``snooze_days``), while a critical card
always gets through.

Alert fatigue is the failure this guards against, and missing a critical card is the failure it must
not cause, so both directions are tested through the HTTP surface: cards issued, feedback sent, and
the app's clock moved on (never a sleep) to just inside and just past the snooze period.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.settings import Settings
from tests.conftest import SELECT, SIGN, TODAY, Clock, cards_for, fixture, rule_ids

FEEDBACK = f"{SELECT}/feedback"
REASON_SYSTEM = "urn:back-spasm-cds:override-reason"
SNOOZE_REASON = "dont-show-again"

DURATION = "cyclobenzaprine-duration"
HEPATIC = "cyclobenzaprine-hepatic-impairment"
MAOI = "cyclobenzaprine-maoi"

DURATION_WARNING = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
DURATION_INFO = "cyclobenzaprine-duration/fires-unknown-duration.json"
# Fatty liver and 10 mg: the hepatic warning (the 30-day supply also brings the duration warning).
HEPATIC_WARNING = "cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-10mg.json"
HEPATIC_CRITICAL = (
    "cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json",
    "cyclobenzaprine-hepatic-impairment/fires-critical-severity-severe-on-hepatitis-c.json",
)
MAOI_CRITICAL = "cyclobenzaprine-maoi/fires-phenelzine-active.json"

# Every fixture used here is for this patient (checked in `request`); OTHER_PATIENT is a copy.
PATIENT = "harness-pt-1"
OTHER_PATIENT = "another-patient"

# The morning of the fixtures' "today": cards are issued and overridden at this instant.
START = datetime(TODAY.year, TODAY.month, TODAY.day, 10, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def service(make_client: Callable[..., TestClient], clock: Clock) -> TestClient:
    return make_client(clock=clock)


@pytest.fixture
def service_from_environment(tmp_path: Path, clock: Clock) -> Iterator[Callable[[], TestClient]]:
    """Clients whose settings are read from the environment as set by the test (as in test_configuration)."""
    clients: list[TestClient] = []

    def make() -> TestClient:
        settings = Settings(data_dir=tmp_path / "env-var", fhir_deadline_seconds=1.0, auth_mode="off")
        client = TestClient(create_app(settings, clock=clock))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def request(name: str, patient_id: str = PATIENT, *, draft_id: str | None = None) -> dict[str, Any]:
    """A fixture for ``patient_id`` (context, Patient resource and every subject reference), optionally
    with its draft order renamed, as when the same patient has another order."""
    original = fixture(name)
    assert original["context"]["patientId"] == PATIENT, name
    text = json.dumps(original).replace(f'"{PATIENT}"', f'"{patient_id}"')
    text = text.replace(f'"Patient/{PATIENT}"', f'"Patient/{patient_id}"')
    if draft_id is not None:
        [draft] = [e["resource"] for e in original["context"]["draftOrders"]["entry"]]
        old = f"{draft['resourceType']}/{draft['id']}"
        text = text.replace(f'"{draft["id"]}"', f'"{draft_id}"').replace(
            f'"{old}"', f'"{draft["resourceType"]}/{draft_id}"'
        )
    return json.loads(text)


def call(client: TestClient, name: str, patient_id: str = PATIENT, **changes: Any) -> dict[str, Any]:
    response = client.post(SELECT, json=request(name, patient_id, **changes))
    assert response.status_code == 200, response.text
    return response.json()


def only_card(body: dict[str, Any], rule_id: str) -> dict[str, Any]:
    [card] = cards_for(body, rule_id)
    return card


def reason_codes(card: dict[str, Any]) -> list[str]:
    return [reason["code"] for reason in card.get("overrideReasons", [])]


def override(client: TestClient, card: dict[str, Any], reason: str | None = SNOOZE_REASON, **extra: Any) -> None:
    """Dismiss ``card`` as the sandbox does (code and system, no display), at the client's stated time."""
    item: dict[str, Any] = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
    if reason is not None:
        item["overrideReason"] = {"reason": {"system": REASON_SYSTEM, "code": reason}}
    item.update(extra)
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "stored": 1}


def accept(client: TestClient, card: dict[str, Any]) -> None:
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-11-21T10:00:00Z",
    }
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "stored": 1}


# -- the "done when" -------------------------------------------------------------------


def test_an_overridden_duration_warning_stays_away_for_that_patient_for_30_days_then_returns(
    service: TestClient, clock: Clock
) -> None:
    card = only_card(call(service, DURATION_WARNING), DURATION)
    assert card["indicator"] == "warning"
    override(service, card)

    for days, minutes in ((0, 1), (29, 0), (30, -1)):
        clock.set(days=days, minutes=minutes)
        assert call(service, DURATION_WARNING) == {"cards": []}, (days, minutes)

    clock.set(days=31)
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]


def test_a_snooze_for_one_patient_does_not_silence_the_rule_for_another(service: TestClient, clock: Clock) -> None:
    override(service, only_card(call(service, DURATION_WARNING), DURATION))
    clock.set(minutes=1)
    assert call(service, DURATION_WARNING) == {"cards": []}
    assert rule_ids(call(service, DURATION_WARNING, OTHER_PATIENT)) == [DURATION]
    clock.set(days=29)
    assert rule_ids(call(service, DURATION_WARNING, OTHER_PATIENT)) == [DURATION]


@pytest.mark.parametrize(
    "reason",
    [
        pytest.param({"reason": SNOOZE_REASON}, id="dont-show-again"),
        pytest.param({"reason": "already-addressed"}, id="another-reason"),
        pytest.param({"reason": None, "overrideReason": {"userComment": "discussed"}}, id="comment-only"),
        pytest.param({"reason": None}, id="no-reason"),
    ],
)
def test_any_override_of_a_warning_snoozes_its_rule(service: TestClient, clock: Clock, reason: dict[str, Any]) -> None:
    override(service, only_card(call(service, DURATION_WARNING), DURATION), **reason)
    clock.set(days=1)
    assert call(service, DURATION_WARNING) == {"cards": []}


def test_overriding_an_info_card_snoozes_its_rule_including_its_warnings(service: TestClient, clock: Clock) -> None:
    info = only_card(call(service, DURATION_INFO), DURATION)
    assert info["indicator"] == "info"
    override(service, info)
    clock.set(days=1)
    assert call(service, DURATION_INFO) == {"cards": []}
    assert call(service, DURATION_WARNING) == {"cards": []}


def test_a_snooze_silences_only_the_overridden_rule(service: TestClient, clock: Clock) -> None:
    body = call(service, HEPATIC_WARNING)
    assert rule_ids(body) == [HEPATIC, DURATION]
    override(service, only_card(body, DURATION))
    clock.set(minutes=1)
    assert rule_ids(call(service, HEPATIC_WARNING)) == [HEPATIC]


def test_a_snooze_holds_for_the_patient_at_order_sign_too(service: TestClient, clock: Clock) -> None:
    override(service, only_card(call(service, DURATION_WARNING), DURATION))
    clock.set(minutes=1)
    signing = request(DURATION_WARNING)
    signing["hook"] = "order-sign"
    response = service.post(SIGN, json=signing)
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


# -- critical cards are never snoozed ----------------------------------------------------------


@pytest.mark.parametrize("name", [MAOI_CRITICAL, *HEPATIC_CRITICAL])
@pytest.mark.parametrize("reason", ["offered", SNOOZE_REASON])
def test_an_overridden_critical_card_comes_straight_back(
    service: TestClient, clock: Clock, name: str, reason: str
) -> None:
    """Even when a client sends "don't show again", which a critical card does not offer."""
    [card] = call(service, name)["cards"]
    assert card["indicator"] == "critical"
    override(service, card, reason_codes(card)[0] if reason == "offered" else reason)
    for days in (0, 1, 29):
        clock.set(days=days, minutes=1)
        [again] = call(service, name)["cards"]
        assert (again["source"]["topic"]["code"], again["indicator"]) == (card["source"]["topic"]["code"], "critical")


@pytest.mark.parametrize("critical", HEPATIC_CRITICAL)
def test_overriding_a_critical_card_does_not_snooze_the_rules_warning(
    service: TestClient, clock: Clock, critical: str
) -> None:
    override(service, only_card(call(service, critical), HEPATIC))
    clock.set(minutes=1)
    assert only_card(call(service, HEPATIC_WARNING), HEPATIC)["indicator"] == "warning"


@pytest.mark.parametrize("critical", HEPATIC_CRITICAL)
def test_a_snoozed_rule_still_shows_its_critical_card_for_that_patient(
    service: TestClient, clock: Clock, critical: str
) -> None:
    warning = only_card(call(service, HEPATIC_WARNING), HEPATIC)
    assert warning["indicator"] == "warning"
    override(service, warning)
    clock.set(days=1)
    assert HEPATIC not in rule_ids(call(service, HEPATIC_WARNING))  # the warning is snoozed ...
    card = only_card(call(service, critical, PATIENT), HEPATIC)  # ... the liver failure is not
    assert card["indicator"] == "critical"
    assert SNOOZE_REASON not in reason_codes(card)


# -- the "don't show again" reason -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rule_id", "indicator"),
    [(DURATION_WARNING, DURATION, "warning"), (DURATION_INFO, DURATION, "info"), (HEPATIC_WARNING, HEPATIC, "warning")],
)
def test_warning_and_info_cards_offer_dont_show_again_for_30_days(
    client: TestClient, name: str, rule_id: str, indicator: str
) -> None:
    card = only_card(call(client, name), rule_id)
    assert card["indicator"] == indicator
    assert card["overrideReasons"][-1] == {
        "system": REASON_SYSTEM,
        "code": SNOOZE_REASON,
        "display": "Don't show again for this patient (30 days)",
    }
    assert reason_codes(card).count(SNOOZE_REASON) == 1


@pytest.mark.parametrize("name", [MAOI_CRITICAL, *HEPATIC_CRITICAL])
def test_critical_cards_do_not_offer_dont_show_again(client: TestClient, name: str) -> None:
    [card] = call(client, name)["cards"]
    assert card["indicator"] == "critical"
    assert reason_codes(card)  # they do offer their rule's own reasons
    assert SNOOZE_REASON not in reason_codes(card)


def test_with_snooze_off_dont_show_again_is_not_offered_and_overridden_cards_come_back(
    make_client: Callable[..., TestClient], clock: Clock
) -> None:
    service = make_client(clock=clock, snooze_days=0)
    assert SNOOZE_REASON not in reason_codes(only_card(call(service, DURATION_INFO), DURATION))
    warning = only_card(call(service, DURATION_WARNING), DURATION)
    assert reason_codes(warning) == ["benefit-outweighs-risk", "already-addressed", "data-incorrect"]
    override(service, warning)  # "don't show again", though not offered
    clock.set(minutes=1)
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]


# -- per-rule snooze period --------------------------------------------------------------------


def test_a_rules_own_snooze_days_set_in_the_environment_override_the_default(
    monkeypatch: pytest.MonkeyPatch, service_from_environment: Callable[[], TestClient]
) -> None:
    monkeypatch.setenv("CDS_SNOOZE_DAYS", "14")
    monkeypatch.setenv("CDS_RULES__CYCLOBENZAPRINE_DURATION__SNOOZE_DAYS", "7")
    body = call(service_from_environment(), HEPATIC_WARNING)
    displays = {
        rule_id: [r["display"] for r in only_card(body, rule_id)["overrideReasons"] if r["code"] == SNOOZE_REASON]
        for rule_id in (DURATION, HEPATIC)
    }
    assert displays == {
        DURATION: ["Don't show again for this patient (7 days)"],
        HEPATIC: ["Don't show again for this patient (14 days)"],
    }


def test_a_rule_snoozed_for_7_days_returns_after_7_days(
    monkeypatch: pytest.MonkeyPatch, service_from_environment: Callable[[], TestClient], clock: Clock
) -> None:
    monkeypatch.setenv("CDS_RULES__CYCLOBENZAPRINE_DURATION__SNOOZE_DAYS", "7")
    service = service_from_environment()
    body = call(service, HEPATIC_WARNING)
    override(service, only_card(body, DURATION))
    override(service, only_card(body, HEPATIC))
    clock.set(days=6)
    assert call(service, HEPATIC_WARNING) == {"cards": []}
    clock.set(days=8)
    assert rule_ids(call(service, HEPATIC_WARNING)) == [DURATION]  # the hepatic rule keeps the default 30 days


def test_a_rule_with_snooze_days_0_is_never_snoozed_while_others_are(
    monkeypatch: pytest.MonkeyPatch, service_from_environment: Callable[[], TestClient], clock: Clock
) -> None:
    monkeypatch.setenv("CDS_RULES__CYCLOBENZAPRINE_DURATION__SNOOZE_DAYS", "0")
    service = service_from_environment()
    body = call(service, HEPATIC_WARNING)
    assert SNOOZE_REASON not in reason_codes(only_card(body, DURATION))
    assert SNOOZE_REASON in reason_codes(only_card(body, HEPATIC))
    override(service, only_card(body, DURATION))
    override(service, only_card(body, HEPATIC))
    clock.set(minutes=1)
    assert rule_ids(call(service, HEPATIC_WARNING)) == [DURATION]


# -- accepted cards, the clock, restarts -------------------------------------------------------


def test_an_accepted_card_does_not_snooze_its_rule(service: TestClient, clock: Clock) -> None:
    """Acceptance quiets only that draft order and drug, for CDS_ACCEPTED_QUIET_MINUTES (60)."""
    accept(service, only_card(call(service, DURATION_WARNING), DURATION))
    clock.set(minutes=1)
    assert call(service, DURATION_WARNING) == {"cards": []}
    assert rule_ids(call(service, DURATION_WARNING, draft_id="request-456")) == [DURATION]
    clock.set(minutes=61)
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]


def test_with_accepted_quiet_off_an_accepted_card_comes_back_at_once(
    make_client: Callable[..., TestClient], clock: Clock
) -> None:
    """A second later: at the very instant the feedback is received, even a 0-minute window still holds it."""
    service = make_client(clock=clock, accepted_quiet_minutes=0)
    accept(service, only_card(call(service, DURATION_WARNING), DURATION))
    clock.now += 1
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]


def test_the_snooze_runs_from_when_the_feedback_was_received_not_its_stated_time(
    service: TestClient, clock: Clock
) -> None:
    """Feedback sent 20 days after the card, stamped 81 days before it: 30 days from receipt count."""
    card = only_card(call(service, DURATION_WARNING), DURATION)
    clock.set(days=20)
    override(service, card, outcomeTimestamp="2026-09-01T10:00:00Z")
    clock.set(days=49)
    assert call(service, DURATION_WARNING) == {"cards": []}
    clock.set(days=51)
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]


def test_a_snooze_survives_a_restart(make_client: Callable[..., TestClient], clock: Clock) -> None:
    first = make_client(clock=clock)
    override(first, only_card(call(first, DURATION_WARNING), DURATION))
    first.__exit__(None, None, None)
    clock.set(days=1)
    second = make_client(clock=clock)
    assert call(second, DURATION_WARNING) == {"cards": []}
    clock.set(days=31)
    assert rule_ids(call(second, DURATION_WARNING)) == [DURATION]
