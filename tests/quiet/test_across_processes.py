"""Two processes on one PostgreSQL database (two apps, as two workers or containers): each keeps
what feedback silences between writes, and a write made through one reaches the answers the
other kept (``storage.changes``). Every assertion waits for the other process to hear the write
(a notification on the database's connection), up to a deadline, and fails past it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.conftest import Clock, rule_ids
from tests.quiet.conftest import DURATION, DURATION_WARNING, HEPATIC, HEPATIC_WARNING, START, call, only_card, override
from tests.quiet.test_order_sign_repeats import sign

DEADLINE_SECONDS = 10.0
Processes = tuple[TestClient, TestClient]


@pytest.fixture
def processes(make_client: Callable[..., TestClient], postgresql_url: str) -> Processes:
    """Two apps on the same database and patient-id key, their own clocks at the same instant."""
    return make_client(clock=Clock(START), database_url=postgresql_url), make_client(
        clock=Clock(START), database_url=postgresql_url
    )


def eventually(check: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"not within {DEADLINE_SECONDS:g} s: {what}"
        time.sleep(0.02)


def keeping(client: TestClient) -> bool:
    """The process keeps answers: its listener hears the others' writes (``/metrics``)."""
    return "cds_quiet_answers_kept 1.0" in client.get("/metrics").text


def written(client: TestClient) -> None:
    """The cards this process issued, in the database (analytics writes them out first)."""
    assert client.get("/analytics").status_code == 200


def test_a_snooze_given_through_one_process_silences_the_card_in_the_other(processes: Processes) -> None:
    first, second = processes
    eventually(lambda: keeping(first), "the first process listening")
    card = only_card(call(first, DURATION_WARNING), DURATION)
    assert rule_ids(call(first, DURATION_WARNING)) == [DURATION]  # its answer is kept now
    written(first)
    override(second, card)
    eventually(lambda: call(first, DURATION_WARNING) == {"cards": []}, "the snooze heard by the first process")


def test_order_sign_in_one_process_does_not_repeat_what_order_select_showed_in_the_other(
    processes: Processes,
) -> None:
    selecting, signing = processes
    eventually(lambda: keeping(signing), "the signing process listening")
    # Signed before anything was shown: the cards come, and the answer that shows nothing is kept.
    assert rule_ids(sign(signing, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    assert rule_ids(sign(signing, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    assert rule_ids(call(selecting, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    written(selecting)
    eventually(lambda: sign(signing, HEPATIC_WARNING) == {"cards": []}, "order-select's cards heard at order-sign")


@pytest.fixture
def listeners_cut(postgresql_url: str) -> Iterator[Callable[[], None]]:
    admin = create_engine(postgresql_url)

    def cut() -> None:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN cds_quiet'")
            )

    yield cut
    admin.dispose()


def test_a_process_that_stops_hearing_the_others_keeps_nothing_it_may_have_missed(
    processes: Processes, listeners_cut: Callable[[], None]
) -> None:
    first, second = processes
    eventually(lambda: keeping(first), "the first process listening")
    card = only_card(call(first, DURATION_WARNING), DURATION)
    assert rule_ids(call(first, DURATION_WARNING)) == [DURATION]  # kept
    written(first)
    listeners_cut()
    eventually(lambda: not keeping(first), "the first process noticing its listener gone")
    override(second, card)  # announced while the first process does not listen: it misses it
    assert call(first, DURATION_WARNING) == {"cards": []}  # read, not what it had kept
    eventually(lambda: keeping(first), "the first process listening again")
    assert call(first, DURATION_WARNING) == {"cards": []}
