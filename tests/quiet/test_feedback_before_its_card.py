"""Feedback that reaches one process before the other has written the record of its card (records
are written behind the answer): a snooze sent at once was stored without its card's rule and
patient, and lost (``storage.early_feedback``). Each test holds one process's statement at the
database (``HoldingProxy``) to make the order of the two writes that loses it, and fails unless
the snooze silences the card in both processes, and is counted under its rule."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Clock
from tests.feedback_calls import database_rows
from tests.postgres_proxy import HoldingProxy
from tests.quiet.conftest import DURATION, DURATION_WARNING, START, call, only_card, override
from tests.quiet.test_across_processes import DEADLINE_SECONDS, _behind, _upstream, eventually, keeping, written


def _snoozed_in_both(processes: tuple[TestClient, ...], postgresql_url: str) -> None:
    """Joined at once (before any other card is written: the next card writer's look would join
    it too), and then heard by both processes."""
    assert database_rows(postgresql_url, "SELECT rule_id, patient_key IS NOT NULL FROM feedback") == [(DURATION, True)]
    for process in processes:
        eventually(lambda p=process: call(p, DURATION_WARNING) == {"cards": []}, "the snooze silencing the card")


@pytest.mark.parametrize("skew", [0, 600])
def test_a_snooze_stored_before_its_card_record_is_joined_to_it_when_the_record_is_written(
    postgresql_url: str, make_client: Callable[..., TestClient], skew: int
) -> None:
    """The card writer, after its commit, finds the feedback stored without it, by card: the
    receiving host's clock ``skew`` seconds behind the issuing one's (a bound by time lost it)."""
    proxy = HoldingProxy(_upstream(postgresql_url))
    try:
        behind = _behind(proxy, postgresql_url)
        issuing = make_client(clock=Clock(START), database_url=behind, database_wait_seconds=DEADLINE_SECONDS)
        receiving = make_client(clock=Clock(START - skew), database_url=postgresql_url)
        eventually(lambda: keeping(issuing) and keeping(receiving), "both processes listening")
        proxy.hold(b"INSERT INTO issued_cards")
        card = only_card(call(issuing, DURATION_WARNING), DURATION)
        assert proxy.held.wait(DEADLINE_SECONDS), "the card's record not sent"
        override(receiving, card)  # stored while the record is not yet committed
        assert database_rows(postgresql_url, "SELECT rule_id FROM feedback") == [(None,)]
        proxy.release()
        written(issuing)
        _snoozed_in_both((issuing, receiving), postgresql_url)
    finally:
        proxy.close()


def test_a_snooze_whose_card_record_commits_while_it_is_stored_is_joined_to_it(
    postgresql_url: str, make_client: Callable[..., TestClient]
) -> None:
    """The card writer's look finds nothing (the feedback not yet committed); the feedback
    writer, after its commit, finds the card."""
    cards_proxy, feedback_proxy = HoldingProxy(_upstream(postgresql_url)), HoldingProxy(_upstream(postgresql_url))
    try:
        wait = {"database_wait_seconds": DEADLINE_SECONDS}
        issuing = make_client(clock=Clock(START), database_url=_behind(cards_proxy, postgresql_url), **wait)
        receiving = make_client(clock=Clock(START), database_url=_behind(feedback_proxy, postgresql_url), **wait)
        eventually(lambda: keeping(issuing) and keeping(receiving), "both processes listening")
        cards_proxy.hold(b"INSERT INTO issued_cards")
        card = only_card(call(issuing, DURATION_WARNING), DURATION)
        assert cards_proxy.held.wait(DEADLINE_SECONDS), "the card's record not sent"
        feedback_proxy.hold(b"INSERT INTO feedback")
        with ThreadPoolExecutor(1) as pool:
            overriding = pool.submit(override, receiving, card)
            assert feedback_proxy.held.wait(DEADLINE_SECONDS), "the feedback not sent"  # its card looked up
            cards_proxy.release()
            written(issuing)  # committed, and its look for early feedback done
            feedback_proxy.release()
            overriding.result(DEADLINE_SECONDS)
        _snoozed_in_both((issuing, receiving), postgresql_url)
    finally:
        cards_proxy.close()
        feedback_proxy.close()
