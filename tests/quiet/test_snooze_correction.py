"""A correction decides the snooze: the latest item of a card's client about the card (the latest
``outcomeTimestamp``) is what the clinician chose. A "don't show again" corrected to another reason,
or to an acceptance, snoozes nothing; a correction to "don't show again" snoozes. An adversarial
review: the correction was stored, and the warning stayed away for 30 days all the same. On the
embedded SQLite file (through the answers it keeps between calls) and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Clock, rule_ids
from tests.quiet.conftest import (
    DURATION,
    DURATION_WARNING,
    FEEDBACK,
    REASON_SYSTEM,
    SNOOZE_REASON,
    call,
    only_card,
)

ADDRESSED = "already-addressed"


def _said(client: TestClient, card: dict[str, Any], at: str, reason: str | None) -> None:
    """Feedback on ``card`` at ``at`` (10:MM, the fixtures' day): overridden with ``reason``, or,
    for None, its first suggestion accepted."""
    item: dict[str, Any] = {"card": card["uuid"], "outcomeTimestamp": f"2026-11-21T{at}:00Z"}
    if reason is None:
        item |= {"outcome": "accepted", "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}
    else:
        item |= {"outcome": "overridden", "overrideReason": {"reason": {"system": REASON_SYSTEM, "code": reason}}}
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.json() == {"received": 1, "stored": 1}, response.text


def _shown(client: TestClient) -> bool:
    shown = rule_ids(call(client, DURATION_WARNING))
    assert shown in ([], [DURATION])
    return shown == [DURATION]


@pytest.mark.parametrize("correction", [ADDRESSED, None], ids=["to-another-reason", "to-accepted"])
def test_a_corrected_dont_show_again_snoozes_nothing(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str, correction: str | None
) -> None:
    service = make_client(clock=clock, database_url=database_url)
    card = only_card(call(service, DURATION_WARNING), DURATION)
    _said(service, card, "10:00", SNOOZE_REASON)
    clock.set(minutes=1)
    assert not _shown(service)  # snoozed, and the answer kept (SQLite) holds the snooze
    _said(service, card, "10:05", correction)
    clock.set(minutes=2)
    assert _shown(service)
    clock.set(days=1)
    assert _shown(service)


def test_a_correction_to_dont_show_again_snoozes_and_the_latest_correction_decides(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    service = make_client(clock=clock, database_url=database_url)
    card = only_card(call(service, DURATION_WARNING), DURATION)
    _said(service, card, "10:00", ADDRESSED)
    assert _shown(service)
    for minute, reason, shown in ((5, SNOOZE_REASON, False), (10, ADDRESSED, True), (15, SNOOZE_REASON, False)):
        clock.set(minutes=minute)
        _said(service, card, f"10:{minute:02d}", reason)
        clock.set(minutes=minute + 1)
        assert _shown(service) is shown, reason
    clock.set(days=29)
    assert not _shown(service)
    clock.set(days=30, minutes=15)  # 30 days from the last "don't show again" received
    assert _shown(service)


def test_the_latest_moment_decides_not_the_item_received_last(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    """A client resending out of order: the correction arrives first, the item it corrects after."""
    service = make_client(clock=clock, database_url=database_url)
    card = only_card(call(service, DURATION_WARNING), DURATION)
    _said(service, card, "10:05", ADDRESSED)
    clock.set(minutes=1)
    _said(service, card, "10:00", SNOOZE_REASON)
    clock.set(minutes=2)
    assert _shown(service)
