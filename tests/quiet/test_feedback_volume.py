"""However many feedback items a patient's cards have, the hook call's read of what quiets them
costs what the few that may quiet a card cost. An adversarial review posted 200,000 overrides of
one patient's card (200 requests of 1,000 items, with reasons other than "don't show again"):
each hook call for that patient then read every one of them, 1.9 s on SQLite, where the read runs
on the event loop, so /healthz and every other patient's call waited as long; on PostgreSQL the
read outlasted CDS_DATABASE_WAIT_SECONDS and the database was marked down. The read now looks
only at the items that may quiet a card (an acceptance, a "don't show again") and at the latest
item of each card one names.

Measured by what the database does, never by the clock: the rows the read's statements answer
(on both backends: each was read into Python), and on SQLite the steps of its virtual machine
(what it did in C to answer them)."""

from __future__ import annotations

import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.conftest import SIGN, Clock, rule_ids
from tests.quiet.conftest import (
    DURATION,
    DURATION_WARNING,
    FEEDBACK,
    REASON_SYSTEM,
    SNOOZE_REASON,
    call,
    only_card,
    request,
)

OTHER_REASONS = ("already-addressed", "benefit-outweighs-risk", "data-incorrect")
FIRST_ITEM = datetime(2026, 11, 20, tzinfo=UTC)  # the day before the fixtures' day


def _overrides(
    client: TestClient, card: dict[str, Any], count: int, *, after: int = 0, reasons: tuple[str, ...] = OTHER_REASONS
) -> None:
    """``count`` overrides of ``card``, each of its own moment, their reasons ``reasons`` in turn
    (by default none "don't show again"), sent 1,000 to a request as the review sent them."""
    for start in range(after, after + count, 1000):
        items = [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": (FIRST_ITEM + timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
                "overrideReason": {"reason": {"system": REASON_SYSTEM, "code": reasons[n % len(reasons)]}},
            }
            for n in range(start, min(start + 1000, after + count))
        ]
        response = client.post(FEEDBACK, json={"feedback": items})
        assert response.json() == {"received": len(items), "stored": len(items)}, response.text


def _both_hooks(client: TestClient) -> tuple[list[str], list[str]]:
    """The duration warning at order-select, and at order-sign for the same draft (which reads the
    cards order-select showed today too): the rules each showed."""
    selected = rule_ids(call(client, DURATION_WARNING))
    signing = request(DURATION_WARNING) | {"hook": "order-sign", "hookInstance": str(uuid.uuid4())}
    signing["context"] = {key: value for key, value in signing["context"].items() if key != "selections"}
    signed = client.post(SIGN, json=signing)
    assert signed.status_code == 200, signed.text
    return selected, rule_ids(signed.json())


def _reads_feedback(statement: str) -> bool:
    return statement.lstrip().upper().startswith("SELECT") and "feedback" in statement


@contextmanager
def _rows_answered(engine: Engine) -> Iterator[Counter[str]]:
    """The rows the statements reading feedback answered while inside: each statement asked again,
    on its own connection and with its own parameters, as ``SELECT count(*)`` of it."""
    rows: Counter[str] = Counter()

    def count(connection: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if _reads_feedback(statement):
            counting = cursor.connection.cursor()
            counting.execute(f"SELECT count(*) FROM ({statement}) AS answered", parameters)
            rows["rows"] += counting.fetchone()[0]
            rows["statements"] += 1

    event.listen(engine, "after_cursor_execute", count)
    try:
        yield rows
    finally:
        event.remove(engine, "after_cursor_execute", count)


@contextmanager
def _steps(engine: Engine) -> Iterator[Counter[str]]:
    """SQLite's virtual-machine steps, in hundreds, of the statements reading feedback while
    inside (each counted until the next statement on its connection: rows are stepped as they are
    fetched); the steps of every other statement apart."""
    steps: Counter[str] = Counter()
    connections: list[sqlite3.Connection] = []

    def count(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        which = "read" if _reads_feedback(statement) else "other"

        def step() -> int:
            steps[which] += 1
            return 0  # go on

        cursor.connection.set_progress_handler(step, 1)
        connections.append(cursor.connection)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield steps
    finally:
        event.remove(engine, "before_cursor_execute", count)
        for connection in connections:
            connection.set_progress_handler(None, 0)


def test_a_patients_many_overrides_are_not_read_by_its_hook_calls(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    """The read answered a row per item and statement: for 10 overrides 31 rows (order-select's
    statement, and order-sign's two), for 2,010 of them 6,032. Now one, whatever the count."""
    service = make_client(clock=clock, database_url=database_url)
    store = service.app.state.runtime.store  # type: ignore[attr-defined]
    card = only_card(call(service, DURATION_WARNING), DURATION)
    _overrides(service, card, 10)
    clock.set(minutes=1)
    with _rows_answered(store.engine) as few:
        assert _both_hooks(service) == ([DURATION], [])  # no snooze; order-sign repeats nothing shown
    _overrides(service, card, 2000, after=10)
    clock.set(minutes=2)
    with _rows_answered(store.engine) as many:
        assert _both_hooks(service) == ([DURATION], [])
    assert few["statements"] > 0, "the hook calls read no feedback: the statements were not recognised"
    assert many == few, (few, many)
    assert many["rows"] <= 2, many  # the cards order-select showed today, at order-sign


def test_on_sqlite_the_read_does_no_more_work_for_a_patients_many_overrides(
    make_client: Callable[..., TestClient], clock: Clock, tmp_path: Any
) -> None:
    """The read's statements stepped through every item (in C, before any row reached Python):
    821 steps for 10 overrides, 146,851 for 2,010. Now about what they did for 10."""
    service = make_client(clock=clock, database_url=f"sqlite:///{tmp_path / 'cds-service.db'}")
    store = service.app.state.runtime.store  # type: ignore[attr-defined]
    card = only_card(call(service, DURATION_WARNING), DURATION)
    _overrides(service, card, 10)
    clock.set(minutes=1)
    with _steps(store.engine) as few:
        _both_hooks(service)
    _overrides(service, card, 2000, after=10)
    clock.set(minutes=2)
    with _steps(store.engine) as many:
        _both_hooks(service)
    assert few["read"] > 0, "the hook calls read no feedback: the statements were not recognised"
    assert many["read"] <= few["read"] * 1.5, (few, many)


def test_a_cards_many_dont_show_again_are_one_row_of_the_read(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    """Only a card's latest item says what the clinician chose: each "don't show again" was read
    (6,001 rows here), and looked for a later item of its card through every earlier one (of
    200,000, a hundred took 15 s on SQLite). Now the card they name, and its latest item: a row."""
    service = make_client(clock=clock, database_url=database_url)
    store = service.app.state.runtime.store  # type: ignore[attr-defined]
    card = only_card(call(service, DURATION_WARNING), DURATION)
    _overrides(service, card, 2000, reasons=(SNOOZE_REASON,))
    clock.set(minutes=1)
    with _rows_answered(store.engine) as read:
        assert _both_hooks(service) == ([], [])  # snoozed
    assert read["rows"] <= 4, read  # a row a statement: the snooze, and the card shown today
