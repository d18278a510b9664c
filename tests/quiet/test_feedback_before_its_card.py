"""Feedback that reaches one process before the other has written the record of its card (records
are written behind the answer): a snooze sent at once was stored without its card's rule and
patient, and lost (``storage.early_feedback``). Each test holds one process's statement at the
database (``HoldingProxy``) to make the order of the two writes that loses it, and fails unless
the snooze silences the card in both processes, and is counted under its rule.

An acceptance stored before its card's record was not checked against the suggestions the card
offered (at arrival, one naming none of them is refused): joined, it is kept as sent, and counts
as an acceptance (in the report, at order-sign) only if it names one the card offered."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from cds_service.cli import main
from cds_service.settings import Settings, read_settings
from tests.conftest import SIGN, TODAY, Clock, rule_ids
from tests.feedback_calls import database_rows
from tests.postgres_proxy import HoldingProxy
from tests.quiet.conftest import (
    DURATION,
    DURATION_WARNING,
    FEEDBACK,
    REASON_SYSTEM,
    SNOOZE_REASON,
    START,
    call,
    only_card,
    override,
)
from tests.quiet.test_across_processes import DEADLINE_SECONDS, _behind, _upstream, eventually, keeping, written
from tests.quiet.test_order_sign_repeats import sign

UNOFFERED = "not-a-suggestion-of-this-card"


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
        # Stored while the record is not yet committed; stamped by neither host (the client's
        # clock): one after the receiving host's clock would be refused.
        override(receiving, card, outcomeTimestamp="2026-11-21T09:45:00Z")
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


def _accepted_before_its_card(postgresql_url: str, make_client: Callable[..., TestClient], offered: bool) -> TestClient:
    """The duration card accepted through one process while the other's record of it is held at
    the database: a suggestion the card ``offered``, or one it did not. The process that received it."""
    proxy = HoldingProxy(_upstream(postgresql_url))
    try:
        behind = _behind(proxy, postgresql_url)
        issuing = make_client(clock=Clock(START), database_url=behind, database_wait_seconds=DEADLINE_SECONDS)
        receiving = make_client(clock=Clock(START), database_url=postgresql_url)
        proxy.hold(b"INSERT INTO issued_cards")
        card = only_card(call(issuing, DURATION_WARNING), DURATION)
        assert proxy.held.wait(DEADLINE_SECONDS), "the card's record not sent"
        accepted = card["suggestions"][0]["uuid"] if offered else UNOFFERED
        item = {
            "card": card["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": accepted}],
            "outcomeTimestamp": "2026-11-21T10:00:00Z",
        }
        # No record of the card yet, nothing to check the id against: stored as sent.
        assert receiving.post(FEEDBACK, json={"feedback": [item]}).json() == {"received": 1, "stored": 1}
        proxy.release()
        written(issuing)
    finally:
        proxy.close()
    # Joined to its card, and kept as sent.
    assert database_rows(postgresql_url, "SELECT rule_id, accepted_suggestions FROM feedback") == [
        (DURATION, json.dumps([accepted]))
    ]
    return receiving


def _report(settings: Settings, postgresql_url: str, monkeypatch: pytest.MonkeyPatch, *options: str) -> int:
    """``cds-service report`` for the test's day, on the test's database."""
    for name in [name for name in os.environ if name.startswith("CDS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CDS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CDS_DATABASE_URL", postgresql_url)
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)  # not another test's, cached
    return main(["report", "--from", TODAY.isoformat(), "--to", TODAY.isoformat(), *options])


@pytest.mark.parametrize(("offered", "accepted", "unoffered"), [(True, 1, 0), (False, 0, 1)])
def test_an_acceptance_stored_before_its_card_record_is_reported_accepted_only_naming_what_the_card_offered(
    postgresql_url: str,
    make_client: Callable[..., TestClient],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    offered: bool,
    accepted: int,
    unoffered: int,
) -> None:
    """Naming none of the card's suggestions, the acceptance was reported as the alert accepted:
    the alert is ignored (nothing else was said of it), and the report says why apart."""
    _accepted_before_its_card(postgresql_url, make_client, offered)
    assert _report(settings, postgresql_url, monkeypatch, "--json") == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["totals"]["accepted"], figures["totals"]["ignored"]) == (accepted, 1 - accepted)
    assert figures["unoffered_suggestions"] == unoffered
    assert _report(settings, postgresql_url, monkeypatch) == 0
    said = "1 feedback item(s) accepted only suggestions their card did not offer: not counted as accepted."
    assert (said in capsys.readouterr().out.splitlines()) == (not offered)


@pytest.mark.parametrize(("offered", "repeated"), [(True, [DURATION]), (False, [])])
def test_an_acceptance_stored_before_its_card_record_brings_it_back_at_order_sign_only_naming_what_it_offered(
    postgresql_url: str, make_client: Callable[..., TestClient], offered: bool, repeated: list[str]
) -> None:
    """An accepted card comes back at order-sign (its suggestion may not be applied); an
    acceptance naming none of its suggestions is refused at arrival, and the card shown at
    order-select is not repeated. Stored before the card's record, it brought the card back."""
    receiving = _accepted_before_its_card(postgresql_url, make_client, offered)
    assert rule_ids(sign(receiving, DURATION_WARNING)) == repeated


def test_a_snooze_sent_to_the_other_service_before_its_card_record_is_joined_to_it_as_the_issuing_services(
    postgresql_url: str, make_client: Callable[..., TestClient]
) -> None:
    """Feedback on an order-select card sent to order-sign's endpoint is the clinician's choice
    all the same (tests/test_feedback_checks.py). Stored before the card's record, it was never
    joined to it: it snoozed nothing, and the same item sent then to order-select's endpoint, a
    resend, could not make it count. Joined, it takes the card's rule, patient and service."""
    proxy = HoldingProxy(_upstream(postgresql_url))
    try:
        behind = _behind(proxy, postgresql_url)
        issuing = make_client(clock=Clock(START), database_url=behind, database_wait_seconds=DEADLINE_SECONDS)
        receiving = make_client(clock=Clock(START), database_url=postgresql_url)
        eventually(lambda: keeping(issuing) and keeping(receiving), "both processes listening")
        proxy.hold(b"INSERT INTO issued_cards")
        card = only_card(call(issuing, DURATION_WARNING), DURATION)
        assert proxy.held.wait(DEADLINE_SECONDS), "the card's record not sent"
        item = {
            "card": card["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-21T09:45:00Z",
            "overrideReason": {"reason": {"system": REASON_SYSTEM, "code": SNOOZE_REASON}},
        }
        # No record of the card yet: stored under the service it was sent to, until joined.
        answer = receiving.post(f"{SIGN}/feedback", json={"feedback": [item]})
        assert answer.json() == {"received": 1, "stored": 1}
        proxy.release()
        written(issuing)
        _snoozed_in_both((issuing, receiving), postgresql_url)
    finally:
        proxy.close()
    assert database_rows(postgresql_url, "SELECT service_id FROM feedback") == [("back-spasm-order-select",)]
    assert receiving.post(FEEDBACK, json={"feedback": [item]}).json() == {"received": 1, "stored": 0}
