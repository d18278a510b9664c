"""What keeps a card quiet, and what brings it back, through the HTTP surface.

Snooze: a clinician who overrides a warning or info card with the explicit reason "Don't show
again for this patient (N days)" is not shown that rule again for the same patient for a while
(``CDS_SNOOZE_DAYS``, or the rule's own ``snooze_days``); any other override, or a bare Dismiss,
snoozes nothing, and a critical card always gets through. An accepted card comes back while its
rule still applies (the client may not have applied the suggestion). Order-sign does not repeat
a non-critical card order-select showed the same day for the unchanged draft.

Alert fatigue is the failure this guards against, and missing a critical card is the failure it must
not cause, so both directions are tested: cards issued, feedback sent, and the app's clock moved on
(never a sleep) to just inside and just past the snooze period.
"""

from __future__ import annotations

import copy
import json
import uuid
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


def test_dont_show_again_snoozes_its_rule(service: TestClient, clock: Clock) -> None:
    override(service, only_card(call(service, DURATION_WARNING), DURATION), SNOOZE_REASON)
    clock.set(days=1)
    assert call(service, DURATION_WARNING) == {"cards": []}


@pytest.mark.parametrize(
    "reason",
    [
        pytest.param({"reason": "already-addressed"}, id="another-reason"),
        pytest.param({"reason": "benefit-outweighs-risk"}, id="benefit-outweighs-risk"),
        pytest.param({"reason": None, "overrideReason": {"userComment": "discussed"}}, id="comment-only"),
        pytest.param({"reason": None}, id="bare-dismiss"),
        pytest.param(
            {"reason": None, "overrideReason": {"reason": {"system": "urn:another-ehr", "code": SNOOZE_REASON}}},
            id="another-systems-code",
        ),
    ],
)
def test_no_other_override_snoozes_its_rule(service: TestClient, clock: Clock, reason: dict[str, Any]) -> None:
    """A bare Dismiss, a comment or another reason says nothing about the next order: the card
    comes back on the next call while its rule applies."""
    override(service, only_card(call(service, DURATION_WARNING), DURATION), **reason)
    clock.set(minutes=1)
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]
    clock.set(days=1)
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]


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
    monkeypatch.setenv("CDS_RULES__CYCLOBENZAPRINE_DURATION__SNOOZE_DAYS", "1")
    body = call(service_from_environment(), HEPATIC_WARNING)
    displays = {
        rule_id: [r["display"] for r in only_card(body, rule_id)["overrideReasons"] if r["code"] == SNOOZE_REASON]
        for rule_id in (DURATION, HEPATIC)
    }
    assert displays == {
        DURATION: ["Don't show again for this patient (1 day)"],
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


def test_an_accepted_card_comes_back_while_its_rule_applies(service: TestClient, clock: Clock) -> None:
    """Accepting "Limit to 21 days" silences nothing: a client that applied it sends a 21-day
    draft (no card by itself); one that did not sends the 30-day draft again, and the card returns."""
    accept(service, only_card(call(service, DURATION_WARNING), DURATION))
    clock.set(minutes=1)
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]
    assert rule_ids(call(service, DURATION_WARNING, draft_id="request-456")) == [DURATION]
    applied = request(DURATION_WARNING)
    [draft] = [e["resource"] for e in applied["context"]["draftOrders"]["entry"]]
    draft["dispenseRequest"]["expectedSupplyDuration"]["value"] = 21
    response = service.post(SELECT, json=applied)
    assert response.status_code == 200, response.text
    assert DURATION not in rule_ids(response.json())


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


# -- order-sign does not repeat what order-select showed for the unchanged draft ---------------


def sign(client: TestClient, body: dict[str, Any] | str, patient_id: str = PATIENT) -> dict[str, Any]:
    """Order-sign for the same draft, as a client fires it after order-select."""
    signing = request(body, patient_id) if isinstance(body, str) else copy.deepcopy(body)
    signing["hook"] = "order-sign"
    signing["hookInstance"] = str(uuid.uuid4())
    signing["context"].pop("selections", None)
    response = client.post(SIGN, json=signing)
    assert response.status_code == 200, response.text
    return response.json()


def edited(name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = request(name)
    change(body["context"]["draftOrders"]["entry"][0]["resource"])
    return body


def test_order_sign_does_not_repeat_the_cards_order_select_showed_for_the_unchanged_draft(
    service: TestClient, clock: Clock
) -> None:
    assert rule_ids(call(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    clock.set(minutes=5)
    assert sign(service, HEPATIC_WARNING) == {"cards": []}
    # A change no rule reads (a note to the pharmacy) leaves the draft unchanged for this purpose.
    noted = edited(HEPATIC_WARNING, lambda draft: draft.update(note=[{"text": "Dispense in a blister pack"}]))
    assert sign(service, noted) == {"cards": []}
    # Order-select itself answers every re-fire in full: the client replaces the cards it shows.
    assert rule_ids(call(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]


@pytest.mark.parametrize("name", [MAOI_CRITICAL, *HEPATIC_CRITICAL])
def test_order_sign_repeats_a_critical_card(service: TestClient, clock: Clock, name: str) -> None:
    [card] = call(service, name)["cards"]
    assert card["indicator"] == "critical"
    clock.set(minutes=5)
    [again] = sign(service, name)["cards"]
    assert (again["source"], again["indicator"]) == (card["source"], "critical")


def test_order_sign_shows_the_card_again_for_a_changed_draft_another_day_or_another_patient(
    service: TestClient, clock: Clock
) -> None:
    call(service, DURATION_WARNING)
    shorter = edited(
        DURATION_WARNING, lambda draft: draft["dispenseRequest"]["expectedSupplyDuration"].update(value=28)
    )
    clock.set(minutes=5)
    [card] = sign(service, shorter)["cards"]  # 28 days: the card says so
    assert "28 days" in card["summary"]
    assert rule_ids(sign(service, DURATION_WARNING, OTHER_PATIENT)) == [DURATION]
    clock.set(days=1)  # the next day (UTC)
    assert rule_ids(sign(service, DURATION_WARNING)) == [DURATION]


def test_a_card_accepted_at_order_select_but_not_applied_is_repeated_at_order_sign(
    service: TestClient, clock: Clock
) -> None:
    """The issue's case: "Limit to 21 days" accepted, the client applied nothing, the 30-day order
    goes to signing: the card must be there."""
    call(service, DURATION_WARNING)  # an earlier re-fire, not accepted
    accept(service, only_card(call(service, DURATION_WARNING), DURATION))
    clock.set(minutes=5)
    assert rule_ids(sign(service, DURATION_WARNING)) == [DURATION]


def test_a_card_dismissed_at_order_select_is_not_repeated_at_order_sign_nor_snoozed(
    service: TestClient, clock: Clock
) -> None:
    override(service, only_card(call(service, DURATION_WARNING), DURATION), reason=None)
    clock.set(minutes=5)
    assert sign(service, DURATION_WARNING) == {"cards": []}
    clock.set(days=1)
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]
