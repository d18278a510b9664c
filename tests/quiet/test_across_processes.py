"""Two processes on one PostgreSQL database (two apps, as two workers or containers): each keeps
order-select's quiet answers (snoozes, swaps) between writes, and feedback given through one
reaches the answers the other kept (``storage.changes``); order-sign's answers, which a card
accepted elsewhere changes, are read on every call. Where a write must reach the other process,
the assertion waits for its note, up to a deadline, and fails past it.

Each test asks for ``postgresql_url`` before ``make_client``: fixtures end in the reverse order,
so the apps close their connections before the schema is dropped (a drop that waited on an
app's open transaction deadlocked once, ten minutes on, in a loaded run)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from cds_service.storage.changes import CHANNEL
from tests.conftest import Clock, rule_ids
from tests.feedback_calls import database_rows
from tests.postgres_proxy import CuttableProxy, HoldingProxy
from tests.quiet.conftest import (
    DURATION,
    DURATION_WARNING,
    FEEDBACK,
    HEPATIC,
    HEPATIC_WARNING,
    REASON_SYSTEM,
    SNOOZE_REASON,
    START,
    accept,
    call,
    only_card,
    override,
)
from tests.quiet.test_order_sign_repeats import sign

DEADLINE_SECONDS = 10.0
Processes = tuple[TestClient, TestClient]


def _process(make_client: Callable[..., TestClient], database_url: str) -> TestClient:
    """An app on ``database_url``, with the suite's patient-id key and a clock at the same instant."""
    return make_client(clock=Clock(START), database_url=database_url)


@pytest.fixture
def processes(postgresql_url: str, make_client: Callable[..., TestClient]) -> Processes:
    return _process(make_client, postgresql_url), _process(make_client, postgresql_url)


def eventually(check: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"not within {DEADLINE_SECONDS:g} s: {what}"
        time.sleep(0.02)


def metric(client: TestClient, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def keeping(client: TestClient) -> bool:
    """The process keeps answers: it hears the others' writes."""
    return metric(client, "cds_quiet_answers_kept") == 1


def answered(client: TestClient, source: str) -> float:
    return metric(client, f'cds_quiet_answers_total{{source="{source}"}}')


def written(client: TestClient) -> None:
    """The cards this process issued, in the database (analytics writes them out first)."""
    assert client.get("/analytics").status_code == 200


def test_a_snooze_given_through_one_process_silences_the_card_the_other_had_kept(processes: Processes) -> None:
    first, second = processes
    eventually(lambda: keeping(first), "the first process listening")
    card = only_card(call(first, DURATION_WARNING), DURATION)
    kept = answered(first, "kept")
    assert rule_ids(call(first, DURATION_WARNING)) == [DURATION]
    assert answered(first, "kept") == kept + 1  # the answer of the first call, kept
    written(first)
    override(second, card)
    eventually(lambda: call(first, DURATION_WARNING) == {"cards": []}, "the snooze heard by the first process")


def test_order_sign_reads_what_order_select_showed_and_accepted_in_the_other_process(processes: Processes) -> None:
    selecting, signing = processes
    eventually(lambda: keeping(signing), "the signing process listening")
    assert rule_ids(call(selecting, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    written(selecting)
    read = answered(signing, "read")
    assert sign(signing, HEPATIC_WARNING) == {"cards": []}  # shown at order-select: not repeated
    assert sign(signing, HEPATIC_WARNING) == {"cards": []}
    assert answered(signing, "read") == read + 2  # order-sign's answers are not kept
    # Accepted in the other process and not applied: the card must come back at signing, at once.
    accept(selecting, only_card(call(selecting, HEPATIC_WARNING), HEPATIC))
    assert HEPATIC in rule_ids(sign(signing, HEPATIC_WARNING))


@pytest.mark.parametrize("removal", ["DELETE FROM feedback", "TRUNCATE feedback"])
def test_a_snooze_deleted_by_hand_in_the_database_no_longer_silences_the_card_kept_silent(
    postgresql_url: str, make_client: Callable[..., TestClient], removal: str
) -> None:
    """Any change to feedback reaches the kept answers, whoever makes it (the database announces
    it): here an operator removing a snooze, the one change that lets a card through again. A
    TRUNCATE names no patient: it reaches every patient's kept answer."""
    process = _process(make_client, postgresql_url)
    eventually(lambda: keeping(process), "the process listening")
    override(process, only_card(call(process, DURATION_WARNING), DURATION))

    def kept_silent() -> bool:  # once the snooze's own note has come and gone
        kept = answered(process, "kept")
        return call(process, DURATION_WARNING) == {"cards": []} and answered(process, "kept") == kept + 1

    eventually(kept_silent, "the snoozed answer kept")
    by_hand = create_engine(postgresql_url)
    with by_hand.begin() as connection:
        connection.execute(text(removal))
    by_hand.dispose()
    eventually(lambda: rule_ids(call(process, DURATION_WARNING)) == [DURATION], "the deletion heard")


def test_feedback_about_many_patients_is_stored_heard_and_swept_in_one_statement(
    postgresql_url: str, make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    """The database names the patients of a change to feedback in notes of a hundred patients
    each (PostgreSQL takes a note of at most 8,000 bytes): one note for a batch about 130
    patients would be refused, the batch then stored item by item, and the retention sweep that
    deletes them refused for good, keeping them past their time."""
    first, second = _process(make_client, postgresql_url), _process(make_client, postgresql_url)
    eventually(lambda: keeping(first), "the first process listening")
    patients = [f"patient-{n:03d}" for n in range(130)]
    cards = [only_card(call(second, DURATION_WARNING, patient), DURATION) for patient in patients]
    assert rule_ids(call(first, DURATION_WARNING, patients[-1])) == [DURATION]  # kept by the first
    written(second)
    snooze = {"reason": {"system": REASON_SYSTEM, "code": SNOOZE_REASON}}
    at = "2026-11-21T10:00:00Z"
    items = [
        {"card": c["uuid"], "outcome": "overridden", "outcomeTimestamp": at, "overrideReason": snooze} for c in cards
    ]
    assert second.post(FEEDBACK, json={"feedback": items}).json() == {"received": 130, "stored": 130}
    assert "refused whole" not in caplog.text
    eventually(lambda: call(first, DURATION_WARNING, patients[-1]) == {"cards": []}, "the last patient's snooze heard")
    later = Clock(START + 11 * 86400)
    swept = make_client(clock=later, database_url=postgresql_url, retention_days=10, snooze_days=10)
    assert swept.get("/analytics").status_code == 200  # after the sweep at the start
    assert database_rows(postgresql_url, "SELECT count(*) FROM feedback") == [(0,)]


def _behind(proxy: CuttableProxy, database_url: str) -> str:
    return make_url(database_url).set(host="127.0.0.1", port=proxy.port).render_as_string(False)


def _upstream(database_url: str) -> tuple[str, int]:
    direct = make_url(database_url)
    return direct.host or "127.0.0.1", direct.port or 5432


def test_a_read_that_a_write_overtakes_keeps_nothing_the_write_changed(
    postgresql_url: str, make_client: Callable[..., TestClient]
) -> None:
    """A write can commit after a read's snapshot and its note arrive before the read's answer
    (a slow network, a busy database): that answer, read before the write, is not kept, or the
    write would count here only from midnight (``QuietCache.generation``)."""
    proxy = HoldingProxy(_upstream(postgresql_url))
    try:
        # The read is held longer than a call waits for the database by default (it would answer
        # without it, and take the database for down): this process waits as long as the test does.
        behind = _behind(proxy, postgresql_url)
        reading = make_client(clock=Clock(START), database_url=behind, database_wait_seconds=DEADLINE_SECONDS)
        writing = _process(make_client, postgresql_url)
        eventually(lambda: keeping(reading), "the reading process listening")
        card = only_card(call(writing, DURATION_WARNING), DURATION)
        written(writing)
        quiet = reading.app.state.runtime.store._quiet  # its generation: when the listener took the note
        generation, reads = quiet.generation, answered(reading, "read")
        proxy.hold(b"feedback.patient_key = ")  # the quiet read's statement (storage.quiet)
        with ThreadPoolExecutor(1) as pool:
            overtaken = pool.submit(call, reading, DURATION_WARNING)
            assert proxy.held.wait(DEADLINE_SECONDS), "the reading process's quiet read not sent"
            override(writing, card)  # the snooze: committed after the read's snapshot
            eventually(lambda: quiet.generation > generation, "the snooze's note taken by the reading process")
            assert quiet.generation == generation + 1  # that note alone: no reconnection emptied the cache
            proxy.release()
            assert rule_ids(overtaken.result(DEADLINE_SECONDS)) == [DURATION]  # what it read: no snooze
        assert call(reading, DURATION_WARNING) == {"cards": []}
        assert answered(reading, "read") == reads + 2  # both read from the database: nothing kept between
        assert metric(reading, "cds_database_up") == 1
        assert keeping(reading)
        kept = answered(reading, "kept")
        assert call(reading, DURATION_WARNING) == {"cards": []}
        assert answered(reading, "kept") == kept + 1
    finally:
        proxy.close()


@pytest.fixture
def listeners_cut(postgresql_url: str) -> Iterator[Callable[[], None]]:
    admin = create_engine(postgresql_url)

    def cut() -> None:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'cds-quiet-listener' "
                    f"AND query LIKE 'LISTEN \"' || {CHANNEL} || '\\_%'"  # this schema's, not other tests'
                )
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


def test_a_listener_whose_connection_goes_silent_stops_keeping(
    postgresql_url: str, make_client: Callable[..., TestClient]
) -> None:
    """A network path that drops everything leaves the connection open and quiet: only the
    listener's own notes, not heard back, tell it that it hears nothing."""
    proxy = CuttableProxy(_upstream(postgresql_url))
    try:
        behind = _process(make_client, _behind(proxy, postgresql_url))
        eventually(lambda: keeping(behind), "listening through the proxy")
        proxy.cut("partition")
        eventually(lambda: not keeping(behind), "the silent listener noticed")
        proxy.restore()
        eventually(lambda: keeping(behind), "listening again once the path is back")
    finally:
        proxy.close()
