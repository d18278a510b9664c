"""Snooze: "Don't show again for this patient" is the override that silences a warning or info card's
rule for that patient, the only one that does, and never a critical card."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, SIGN, Clock, rule_ids
from tests.quiet.conftest import (
    DURATION,
    DURATION_INFO,
    DURATION_WARNING,
    HEPATIC,
    HEPATIC_CRITICAL,
    HEPATIC_WARNING,
    MAOI,
    MAOI_CRITICAL,
    OTHER_PATIENT,
    PATIENT,
    REASON_SYSTEM,
    SNOOZE_REASON,
    call,
    only_card,
    override,
    reason_codes,
    request,
)

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

    clock.set(days=30)  # 30 days to the second: the snooze is over (it ran [override, +30 days))
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]


def test_a_snooze_for_one_patient_does_not_silence_the_rule_for_another(service: TestClient, clock: Clock) -> None:
    override(service, only_card(call(service, DURATION_WARNING), DURATION))
    clock.set(minutes=1)
    assert call(service, DURATION_WARNING) == {"cards": []}
    assert rule_ids(call(service, DURATION_WARNING, OTHER_PATIENT)) == [DURATION]
    clock.set(days=29)
    assert rule_ids(call(service, DURATION_WARNING, OTHER_PATIENT)) == [DURATION]


def test_a_snooze_holds_however_the_client_spells_the_patient_id(service: TestClient, clock: Clock) -> None:
    override(service, only_card(call(service, DURATION_WARNING), DURATION))
    clock.set(days=1)
    again = request(DURATION_WARNING)
    again["context"]["patientId"] = f"Patient/{PATIENT}"
    response = service.post(SELECT, json=again)
    assert response.status_code == 200, response.text
    assert DURATION not in rule_ids(response.json())


def test_dont_show_again_snoozes_its_rule(service: TestClient, clock: Clock) -> None:
    override(service, only_card(call(service, DURATION_WARNING), DURATION), SNOOZE_REASON)
    clock.set(days=1)
    assert call(service, DURATION_WARNING) == {"cards": []}


def test_dont_show_again_sent_without_its_system_snoozes_its_rule(service: TestClient, clock: Clock) -> None:
    """A client may send the reason's code alone (a Coding's system is optional): the code is
    the one this card offered, and the clinician chose not to see the card again."""
    card = only_card(call(service, DURATION_WARNING), DURATION)
    override(service, card, None, overrideReason={"reason": {"code": SNOOZE_REASON}})
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


def test_overriding_an_info_card_snoozes_its_rules_info_card_not_its_warnings(
    service: TestClient, clock: Clock
) -> None:
    """A reminder snoozed is not a warning seen (tests/quiet/test_snooze_severity.py)."""
    info = only_card(call(service, DURATION_INFO), DURATION)
    assert info["indicator"] == "info"
    override(service, info)
    clock.set(days=1)
    assert call(service, DURATION_INFO) == {"cards": []}
    assert only_card(call(service, DURATION_WARNING), DURATION)["indicator"] == "warning"


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


@pytest.mark.parametrize(
    ("name", "rule_id"),
    [
        ("cyclobenzaprine-serotonergic/fires-sertraline-active.json", "cyclobenzaprine-serotonergic"),
        ("muscle-relaxant-cns-depressant/fires-oxycodone-active.json", "muscle-relaxant-cns-depressant"),
        ("muscle-relaxant-duplicate/fires-tizanidine-active.json", "muscle-relaxant-duplicate"),
        ("back-pain-red-flag/fires-bone-metastasis-c79-51.json", "back-pain-red-flag"),
        (
            "cyclobenzaprine-anticholinergic-caution/fires-bph-with-urinary-symptoms-n40-1.json",
            "cyclobenzaprine-anticholinergic-caution",
        ),
    ],
)
def test_cards_about_what_else_the_patient_takes_or_has_are_snoozed_for_what_they_named(
    service: TestClient, clock: Clock, name: str, rule_id: str
) -> None:
    """They offer "don't show again", and it holds for the drugs or conditions the card named
    (tests/quiet/test_snooze_subject.py: a new one brings the card back)."""
    card = only_card(call(service, name), rule_id)
    assert card["indicator"] == "warning"
    assert SNOOZE_REASON in reason_codes(card)
    override(service, card)
    clock.set(days=1)
    assert rule_id not in rule_ids(call(service, name))


@pytest.mark.parametrize(
    "name",
    [
        "cyclobenzaprine-maoi/fires-maoi-stop-date-unknown-v2-warning.json",
        "cyclobenzaprine-maoi/fires-maoi-active-planned-end-passed-confirm-last-dose.json",
    ],
)
def test_the_maoi_warnings_asking_for_the_last_dose_are_never_snoozed(
    service: TestClient, clock: Clock, name: str
) -> None:
    """They ask whether an MAO inhibitor is still taken: "don't show again" would hide that for
    weeks (a pharmacist's read); the rule ships with snooze_days 0, whatever CDS_SNOOZE_DAYS says."""
    card = only_card(call(service, name), MAOI)
    assert card["indicator"] == "warning"
    assert reason_codes(card) and SNOOZE_REASON not in reason_codes(card)
    override(service, card)  # "don't show again", though not offered
    clock.set(days=1)
    assert MAOI in rule_ids(call(service, name))
