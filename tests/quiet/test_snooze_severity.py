"""A snooze holds for cards as severe as the one snoozed, or less: "Don't show again for this
patient" said of cyclobenzaprine-duration's info card (no duration written: fill it in) was said
of a reminder, and must not hide the warning the rule gives for a later 90-day supply (an
adversarial review: the 90-day order answered ``{"cards": []}``, a fresh patient's the warning).
Said of a warning, it holds for the rule's warnings and its info card, as before. On the embedded
SQLite file and on PostgreSQL, through the answers a process keeps and, on PostgreSQL, a snooze
given through another process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.conftest import SELECT, Clock, rule_ids
from tests.quiet.conftest import (
    DURATION,
    DURATION_INFO,
    DURATION_WARNING,
    HEPATIC,
    HEPATIC_WARNING,
    OTHER_PATIENT,
    PATIENT,
    START,
    call,
    only_card,
    override,
    request,
)
from tests.quiet.test_across_processes import answered, eventually, keeping, written

LATER_ORDER = "request-later"


def _ninety_days(patient_id: str = PATIENT) -> dict[str, Any]:
    """A later order of the same patient (another draft), for a 90-day supply."""
    body = request(DURATION_WARNING, patient_id, draft_id=LATER_ORDER)
    [draft] = [entry["resource"] for entry in body["context"]["draftOrders"]["entry"]]
    draft["dispenseRequest"]["expectedSupplyDuration"]["value"] = 90
    return body


def _post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(SELECT, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _snoozed_info(client: TestClient) -> None:
    info = only_card(call(client, DURATION_INFO), DURATION)
    assert info["indicator"] == "info"
    override(client, info)


def test_dont_show_again_said_of_the_info_card_does_not_silence_the_rules_90_day_warning(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    service = make_client(clock=clock, database_url=database_url)
    _snoozed_info(service)
    clock.set(days=1)
    assert call(service, DURATION_INFO) == {"cards": []}  # the reminder itself stays away
    warning = only_card(_post(service, _ninety_days()), DURATION)
    assert warning["indicator"] == "warning"
    assert warning["summary"] == only_card(_post(service, _ninety_days(OTHER_PATIENT)), DURATION)["summary"]
    assert call(service, DURATION_INFO) == {"cards": []}
    clock.set(days=29)
    assert only_card(_post(service, _ninety_days()), DURATION)["indicator"] == "warning"


def test_dont_show_again_said_of_a_warning_silences_the_rules_warnings_and_its_info_card(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    service = make_client(clock=clock, database_url=database_url)
    warning = only_card(call(service, DURATION_WARNING), DURATION)
    assert warning["indicator"] == "warning"
    override(service, warning)
    clock.set(days=1)
    assert call(service, DURATION_WARNING) == {"cards": []}
    assert _post(service, _ninety_days()) == {"cards": []}
    assert call(service, DURATION_INFO) == {"cards": []}


def test_an_info_snooze_and_a_warning_snooze_leave_another_rules_warning(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    """The hepatic fixture's 10 mg, 30-day order brings the hepatic warning and the duration warning."""
    service = make_client(clock=clock, database_url=database_url)
    _snoozed_info(service)
    clock.set(minutes=1)
    assert rule_ids(call(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    override(service, only_card(call(service, HEPATIC_WARNING), DURATION))
    clock.set(minutes=2)
    assert rule_ids(call(service, HEPATIC_WARNING)) == [HEPATIC]


def test_the_answer_kept_between_calls_tells_the_info_snooze_from_the_warning(
    service: TestClient, clock: Clock
) -> None:
    """The 90-day warning is let through from the answer kept after the info card's call (no
    write between them), not only from a fresh read."""
    _snoozed_info(service)
    clock.set(minutes=1)
    assert call(service, DURATION_INFO) == {"cards": []}
    kept = answered(service, "kept")
    assert only_card(_post(service, _ninety_days()), DURATION)["indicator"] == "warning"
    assert answered(service, "kept") == kept + 1


def test_an_info_snooze_given_through_another_postgresql_process_leaves_the_kept_warning(
    postgresql_url: str, make_client: Callable[..., TestClient]
) -> None:
    first, second = (make_client(clock=Clock(START), database_url=postgresql_url) for _ in range(2))
    eventually(lambda: keeping(first), "the first process listening")
    info = only_card(call(first, DURATION_INFO), DURATION)
    written(first)
    override(second, info)

    def kept_silent() -> bool:  # the snooze heard, and the answer that holds it kept
        kept = answered(first, "kept")
        return call(first, DURATION_INFO) == {"cards": []} and answered(first, "kept") == kept + 1

    eventually(kept_silent, "the info snooze heard by the first process, and kept")
    kept = answered(first, "kept")
    assert only_card(_post(first, _ninety_days()), DURATION)["indicator"] == "warning"
    assert answered(first, "kept") == kept + 1
    warning = only_card(call(second, DURATION_WARNING), DURATION)
    written(second)
    override(second, warning)
    eventually(lambda: _post(first, _ninety_days()) == {"cards": []}, "the warning snooze heard by the first process")


def test_a_snooze_of_a_card_recorded_without_its_indicator_silences_nothing_as_before(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    """A card stored before schema version 2 has no indicator: it may have been critical, so its
    "don't show again" snoozes nothing, of any indicator, as it did before snoozes had a severity."""
    service = make_client(clock=clock, database_url=database_url)
    override(service, only_card(call(service, DURATION_WARNING), DURATION))
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE issued_cards SET indicator = NULL"))
    engine.dispose()
    later = make_client(clock=Clock(START + 86_400), database_url=database_url)
    assert only_card(call(later, DURATION_WARNING), DURATION)["indicator"] == "warning"
    assert only_card(call(later, DURATION_INFO), DURATION)["indicator"] == "info"
