"""A migration during a rolling upgrade on PostgreSQL: the release before still running, its
transactions holding the tables a step changes. The new release waits for them a little at a
time, tries again, refuses to start past its tries, and stops at once on any other error."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from cds_service.app import create_app
from cds_service.pipeline.knowledge import Knowledge
from cds_service.settings import Settings
from cds_service.storage import migrations
from cds_service.storage.engine import CannotStartOnDatabase
from tests.conftest import NOON, Clock, settings_in
from tests.feedback_calls import keyed_as_before_version_14

# A lock on this test's issued_cards (its schema's: the name resolves through the search path)
# not granted: the migration's step waiting. Other tests' schemas run theirs at the same time.
_WAITING_FOR_CARDS = "relation = 'issued_cards'::regclass AND NOT granted"


def _altering(engine: Any) -> bool:
    """Is a migration's ALTER TABLE of issued_cards waiting for a lock?"""
    query = f"SELECT count(*) FROM pg_locks WHERE {_WAITING_FOR_CARDS}"
    with engine.connect() as connection:
        return bool(connection.execute(text(query)).scalar())


def _release_before(settings: Settings, knowledge_for: Callable[[Settings], Knowledge | None]) -> Any:
    """The database as the release before left it (schema version 7), and an engine on it."""
    create_app(settings, knowledge=knowledge_for(settings), clock=Clock(NOON)).state.runtime.store.engine.dispose()
    engine = create_engine(str(settings.database_url))
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE issued_cards DROP COLUMN suggestions"))
        connection.execute(text("ALTER TABLE issued_cards DROP COLUMN keyed"))  # its index with it
        connection.execute(text("DROP TABLE patient_key_check"))
        connection.execute(text("ALTER TABLE issued_cards DROP COLUMN subject"))
        connection.execute(text("DROP TABLE issued_notices"))
        keyed_as_before_version_14(connection)
        connection.execute(text("ALTER TABLE feedback DROP COLUMN card_sent"))
        connection.execute(text("UPDATE schema_version SET version = 7"))  # created at the last: its one row
    return engine


def _long_read(engine: Any) -> Any:
    """A transaction of the release before, reading issued_cards: its lock held till it ends."""
    connection = engine.connect()
    connection.begin()
    connection.execute(text("SELECT count(*) FROM issued_cards")).scalar()
    return connection


@contextmanager
def _new_release_waiting(
    settings: Settings, knowledge_for: Callable[[Settings], Knowledge | None]
) -> Iterator[tuple[Any, Future[Any]]]:
    """The release before's database, one of its transactions holding issued_cards, and the new
    release starting in a thread: yields (an engine, the start) once the migration waits for
    the table; the transaction ends, and the start with it, on leaving."""
    engine = _release_before(settings, knowledge_for)
    old_release = _long_read(engine)
    pool = ThreadPoolExecutor(1)
    started = pool.submit(create_app, settings, knowledge=knowledge_for(settings), clock=Clock(NOON))
    try:
        deadline = time.monotonic() + 30
        while not _altering(engine):
            assert time.monotonic() < deadline and not started.done(), "the migration never waited for the table"
            time.sleep(0.05)
        yield engine, started
    finally:
        old_release.rollback()
        old_release.close()
        pool.shutdown(wait=True)


def test_a_migration_waiting_for_a_table_another_release_reads_lets_it_go_on_and_tries_again(
    tmp_path: Path, postgresql_url: str, knowledge_for: Callable[[Settings], Knowledge | None]
) -> None:
    """A rolling upgrade: a process of the release before (schema version 7) holds issued_cards in
    a long transaction (an analytics read). The new release's migration waits at most a couple of
    seconds for it at a time, so that the old process's other queries of the table are not stuck
    behind it until that transaction ends, and goes through once it has."""
    settings = settings_in(tmp_path).model_copy(update={"database_url": postgresql_url})
    with _new_release_waiting(settings, knowledge_for) as (engine, started):
        # Another of the old release's readers queues behind the waiting migration, and is answered
        # when it gives up (LOCK_WAIT), not when the long transaction ends.
        with engine.connect() as other:
            other.execute(text("SET statement_timeout = '8s'"))
            assert other.execute(text("SELECT count(*) FROM issued_cards")).scalar() == 0
        assert not started.done()  # it tries again
    app = started.result()
    try:
        # The migration's lock timeout was its transactions' own: no pooled connection keeps it.
        pooled = app.state.runtime.store.engine
        connections = [pooled.connect() for _ in range(max(pooled.pool.checkedin(), 1))]
        assert {c.execute(text("SHOW lock_timeout")).scalar() for c in connections} == {"0"}
        for connection in connections:
            connection.close()
        with TestClient(app) as client:
            assert client.get("/readyz").json()["checks"]["database"] == "ok, schema version 15"
    finally:
        app.state.runtime.store.engine.dispose()
        engine.dispose()


def test_a_migration_that_cannot_lock_its_tables_refuses_to_start_and_changes_nothing(
    tmp_path: Path,
    postgresql_url: str,
    knowledge_for: Callable[[Settings], Knowledge | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past its tries (here two, not thirty) the new release does not start, saying why, and the
    database stays as the release before left it: every try rolled back whole."""
    monkeypatch.setattr(migrations, "LOCK_TRIES", 2)
    monkeypatch.setattr(migrations, "RETRY_PAUSE_SECONDS", 0.1)
    settings = settings_in(tmp_path).model_copy(update={"database_url": postgresql_url})
    engine = _release_before(settings, knowledge_for)
    old_release = _long_read(engine)
    pool = ThreadPoolExecutor(1)
    try:
        # In a thread: a migration that waited for the table for good would hang the suite, not fail.
        started = pool.submit(create_app, settings, knowledge=knowledge_for(settings), clock=Clock(NOON))
        with pytest.raises(CannotStartOnDatabase, match="could not lock the tables it changes in 2 tries"):
            started.result(timeout=60)  # two tries of 2 s
    finally:
        old_release.rollback()
        old_release.close()
        pool.shutdown(wait=True)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version FROM schema_version")).scalars().all() == [7]
        columns = "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        assert "suggestions" not in set(
            connection.execute(text(f"{columns} AND table_name = 'issued_cards'")).scalars()
        )
    engine.dispose()


def test_a_migration_failing_for_another_reason_is_not_tried_again(
    tmp_path: Path,
    postgresql_url: str,
    knowledge_for: Callable[[Settings], Knowledge | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only a lock not had (or a deadlock) is worth another try. A migration's statement
    cancelled by an operator while it waits (``pg_cancel_backend``: 57014) stops the start at
    once with PostgreSQL's SQLSTATE (57014, query_canceled): while the table is still held, a try
    more would wait again."""
    monkeypatch.setattr(migrations, "RETRY_PAUSE_SECONDS", 0.1)
    settings = settings_in(tmp_path).model_copy(update={"database_url": postgresql_url})
    with _new_release_waiting(settings, knowledge_for) as (engine, started):
        _cancel_waiting_migration(engine)
        with pytest.raises(CannotStartOnDatabase, match=r"\(CDS_DATABASE_URL\): QueryCanceled 57014$"):
            started.result(timeout=20)  # the table still held: another try would still be waiting
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version FROM schema_version")).scalars().all() == [7]
    engine.dispose()


def _cancel_waiting_migration(engine: Any) -> None:
    """An operator's ``pg_cancel_backend`` of the waiting step (tried until it meets it waiting:
    between its tries of 2 s it is not)."""
    deadline = time.monotonic() + 30
    with engine.connect() as dba:
        while not list(dba.execute(text(f"SELECT pg_cancel_backend(pid) FROM pg_locks WHERE {_WAITING_FOR_CARDS}"))):
            assert time.monotonic() < deadline, "the migration was never met waiting"
            time.sleep(0.05)
