"""Within one process (the embedded SQLite store): feedback committed while a hook call's quiet
read is in flight. On SQLite the read runs on the event loop and feedback is written from a
thread (it waits for the disk), so the two overlap. The call answers from what it read; what it
read must not be kept past the write, or the snooze would count here only from midnight
(``QuietCache.generation``). Across processes, on PostgreSQL: tests/quiet/test_across_processes.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.conftest import Clock, rule_ids
from tests.quiet.conftest import DURATION, DURATION_WARNING, call, only_card, override

DEADLINE_SECONDS = 10.0


class Interleaving:
    """The feedback insert held until a hook call's quiet read has run; that read then held, its
    rows those of the database before the insert, until the feedback is stored and its write has
    told the process (the generation moved on)."""

    def __init__(self, engine: Engine, generation: Callable[[], int]) -> None:
        self.engine = engine
        self.generation = generation
        self.armed = False
        self.inserting = threading.Event()  # the feedback write, at its insert
        self.read = threading.Event()  # the call's quiet read has run (or the test is over)
        self.read_seen = False  # a statement of the quiet read's, met while the insert was held
        self.stored = threading.Event()  # the feedback write told the process, while the read waited
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.armed and statement.startswith("INSERT INTO feedback"):
            self.inserting.set()
            self.read.wait(DEADLINE_SECONDS)

    def _after(self, connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.armed and "feedback.patient_key = " in statement and self.inserting.is_set():
            self.armed, self.read_seen = False, True
            before = self.generation()
            self.read.set()
            deadline = time.monotonic() + DEADLINE_SECONDS
            while self.generation() == before and time.monotonic() < deadline:
                time.sleep(0.005)
            if self.generation() != before:
                self.stored.set()

    def close(self) -> None:
        self.read.set()
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


@pytest.fixture
def service(make_client: Callable[..., TestClient], clock: Clock) -> TestClient:
    return make_client(clock=clock)


@pytest.fixture
def interleaving(service: TestClient) -> Iterator[Interleaving]:
    store = service.app.state.runtime.store  # type: ignore[attr-defined]
    held = Interleaving(store.engine, lambda: store._quiet.generation)
    yield held
    held.close()


def test_a_snooze_stored_while_a_read_is_in_flight_is_not_lost_to_what_it_read(
    service: TestClient, interleaving: Interleaving
) -> None:
    card = only_card(call(service, DURATION_WARNING), DURATION)
    override(service, card, reason="already-addressed")  # snoozes nothing; the next call reads
    interleaving.armed = True
    with ThreadPoolExecutor(2) as pool:
        snooze = pool.submit(override, service, card, outcomeTimestamp="2026-11-21T10:05:00Z")
        assert interleaving.inserting.wait(DEADLINE_SECONDS), "the snooze's insert not reached"
        overtaken = call(service, DURATION_WARNING)
        snooze.result(DEADLINE_SECONDS)
    assert interleaving.read_seen, "the call's quiet read not recognised (a statement with 'feedback.patient_key = ')"
    assert interleaving.stored.is_set(), "the snooze not stored while the call's read was in flight"
    assert rule_ids(overtaken) == [DURATION]  # what it read: no snooze
    assert call(service, DURATION_WARNING) == {"cards": []}
    assert call(service, DURATION_WARNING) == {"cards": []}  # and kept so
