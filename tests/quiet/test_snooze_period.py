"""How long a snooze lasts: each rule's own period or the default, counted from when the feedback
arrived, kept across a restart; an accepted card is not snoozed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, Clock, rule_ids
from tests.quiet.conftest import (
    DURATION,
    DURATION_WARNING,
    FEEDBACK,
    HEPATIC,
    HEPATIC_WARNING,
    SNOOZE_REASON,
    accept,
    call,
    only_card,
    override,
    reason_codes,
    request,
)

OLDER_ADULT = "cyclobenzaprine-older-adult"


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


def test_the_swap_accepted_keeps_its_rule_quiet_for_the_swapped_draft_the_rest_of_that_day_only(
    service: TestClient, clock: Clock
) -> None:
    """The 5 mg swap accepted (the sandbox applies its medication only) at the first instant of
    the day: the rule stays quiet for the draft it left that day, and comes back for it the next,
    as for any draft that breaks it."""
    name = "cyclobenzaprine-older-adult/fires-age-65-10mg.json"
    clock.set(minutes=-600)  # midnight (UTC, the test site's zone): START is 10:00
    card = only_card(call(service, name), OLDER_ADULT)
    swap = next(s for s in card["suggestions"] if s["actions"][0]["type"] == "update")
    item = {"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": swap["uuid"]}]}
    response = service.post(FEEDBACK, json={"feedback": [{**item, "outcomeTimestamp": "2026-11-21T00:00:00Z"}]})
    assert response.json() == {"received": 1, "stored": 1}
    swapped = request(name)
    [draft] = [e["resource"] for e in swapped["context"]["draftOrders"]["entry"]]
    draft["medicationCodeableConcept"] = swap["actions"][0]["resource"]["medicationCodeableConcept"]
    for days, quiet in ((0, True), (1, False)):
        clock.set(days=days, minutes=-599)
        response = service.post(SELECT, json=swapped)
        assert response.status_code == 200, response.text
        assert (OLDER_ADULT not in rule_ids(response.json())) is quiet, days


def _accept_the_swap(service: TestClient, card: dict[str, Any]) -> dict[str, Any]:
    """Accept ``card``'s dose change; the draft as the swap leaves it."""
    swap = next(s for s in card["suggestions"] if s["actions"][0]["type"] == "update")
    item = {"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": swap["uuid"]}]}
    response = service.post(FEEDBACK, json={"feedback": [{**item, "outcomeTimestamp": "2026-11-21T10:00:00Z"}]})
    assert response.json() == {"received": 1, "stored": 1}
    return swap["actions"][0]["resource"]


def test_a_sublingual_swap_accepted_quiets_its_rule_for_the_dose_it_leaves_not_the_one_ordered(
    service: TestClient,
) -> None:
    """The sublingual swap keeps its product (Tonmya, one tablet where two were ordered): accepted
    and not applied, the unchanged 5.6 mg draft was quiet for the day; applied, its 2.8 mg is."""
    name = "cyclobenzaprine-older-adult/fires-sublingual-5.6mg-age-70.json"
    swapped = _accept_the_swap(service, only_card(call(service, name), OLDER_ADULT))
    assert only_card(call(service, name), OLDER_ADULT)["indicator"] == "warning"
    applied = request(name)
    applied["context"]["draftOrders"]["entry"][0]["resource"] = swapped
    response = service.post(SELECT, json=applied)
    assert response.status_code == 200, response.text
    assert OLDER_ADULT not in rule_ids(response.json())


def test_a_swap_accepted_never_quiets_a_critical_card_of_its_rule(service: TestClient) -> None:
    """The hepatic 5 mg swap accepted, the swapped draft is sent again the same day with the
    hepatitis now recorded as severe: the critical card comes, as a critical card always does."""
    swapped = _accept_the_swap(service, only_card(call(service, HEPATIC_WARNING), HEPATIC))
    severe = request(HEPATIC_WARNING)
    severe["context"]["draftOrders"]["entry"][0]["resource"] = swapped
    condition = severe["prefetch"]["conditions"]["entry"][0]["resource"]
    condition["severity"] = {"coding": [{"system": "http://snomed.info/sct", "code": "24484000", "display": "Severe"}]}
    response = service.post(SELECT, json=severe)
    assert response.status_code == 200, response.text
    assert only_card(response.json(), HEPATIC)["indicator"] == "critical"


def test_an_acceptance_sent_with_the_snooze_reason_is_stored_and_snoozes_nothing(
    service: TestClient, clock: Clock
) -> None:
    """Only an overridden item snoozes: a client sending "don't show again" beside an acceptance
    (CDS Hooks ties no field to an outcome) has it stored as sent, and the card, not dismissed,
    comes back while its rule applies."""
    card = only_card(call(service, DURATION_WARNING), DURATION)
    override(service, card, outcome="accepted", acceptedSuggestions=[{"id": card["suggestions"][0]["uuid"]}])
    clock.set(days=1)
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]
