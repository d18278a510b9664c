"""A database that answers but refuses (the storage hunt): a read-only standby, a full disk, a
role without the privilege, a table gone from under the service, a corrupted SQLite file. Each
refuses every write alike, so each is an outage, as a lost connection is: hook calls answer
their cards, their records are held (not lost) and written when the database takes them again,
feedback and analytics answer 503 with Retry-After (never 500), ``/readyz`` answers 503, and
the log says "unavailable" once and "answers again" once, not every second of the refusal.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from cds_service.storage.store import Store
from tests.conftest import NOON, SELECT, After, Clock, fixture

REQUEST = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
FEEDBACK = f"{SELECT}/feedback"

# How each refusal is made on PostgreSQL, and undone: a trigger raising the SQLSTATE the
# server would (a standby, a full disk, a revoked grant), or the table renamed away.
_TRIGGER = """
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'refused by the test' USING ERRCODE = '{code}'; END $$;
CREATE TRIGGER refuse BEFORE INSERT ON issued_cards FOR EACH ROW EXECUTE FUNCTION refuse();
"""
_UNDO_TRIGGER = "DROP TRIGGER refuse ON issued_cards; DROP FUNCTION refuse();"
REFUSALS = {
    "read-only standby (25006)": (_TRIGGER.format(code="25006"), _UNDO_TRIGGER),
    "disk full (53100)": (_TRIGGER.format(code="53100"), _UNDO_TRIGGER),
    "privilege revoked (42501)": (_TRIGGER.format(code="42501"), _UNDO_TRIGGER),
    "table gone (42P01)": (
        "ALTER TABLE issued_cards RENAME TO issued_cards_away",
        "ALTER TABLE issued_cards_away RENAME TO issued_cards",
    ),
}


@pytest.fixture
def on_postgresql(postgresql_url: str) -> Iterator[Callable[[str], None]]:
    """Statements run on the test's PostgreSQL schema, as a DBA would, beside the service."""
    engine = create_engine(postgresql_url)

    def run(statements: str) -> None:
        with engine.begin() as connection:
            connection.exec_driver_sql(statements)

    yield run
    engine.dispose()


def _hook_call(client: TestClient) -> list[str]:
    response = client.post(SELECT, json=fixture(REQUEST) | {"hookInstance": str(uuid.uuid4())})
    assert response.status_code == 200, response.text
    return [card["uuid"] for card in response.json()["cards"]]


def _metric(client: TestClient, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in client.get("/metrics").text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def _until(condition: Callable[[], bool], within: float = 15.0) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within, "no recovery without a restart"
        time.sleep(0.1)


def _overridden(card: str) -> dict[str, object]:
    return {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-21T12:00:00Z"}]}


@pytest.mark.parametrize("refusal", REFUSALS)
def test_postgresql_refusing_writes_is_waited_out_and_no_card_record_is_lost(
    refusal: str,
    postgresql_url: str,
    make_client: Callable[..., TestClient],
    on_postgresql: Callable[[str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    refuse, undo = REFUSALS[refusal]
    client = make_client(clock=Clock(NOON), database_url=postgresql_url, database_wait_seconds=1.0)
    cards = _hook_call(client)
    assert client.post(FEEDBACK, json=_overridden(cards[0])).status_code == 200

    on_postgresql(refuse)
    caplog.set_level(logging.INFO, logger="cds_service.storage")
    during = [card for _ in range(3) for card in _hook_call(client)]
    for path in ("/analytics", "/analytics/report"):
        answer = client.get(path)
        assert (answer.status_code, answer.headers.get("Retry-After")) == (503, "5"), answer.text
    unavailable = client.post(FEEDBACK, json=_overridden(during[0]))
    assert (unavailable.status_code, unavailable.headers.get("Retry-After")) == (503, "5"), unavailable.text
    assert client.get("/readyz").status_code == 503
    time.sleep(2.5)  # the gate's probe asks every second, and the held records are tried again
    during += _hook_call(client)
    assert _metric(client, "cds_database_up") == 0

    on_postgresql(undo)
    _until(lambda: client.get("/readyz").status_code == 200)
    _until(lambda: _metric(client, "cds_database_up") == 1, within=5)  # said up again, as it is
    assert client.post(FEEDBACK, json=_overridden(during[0])).status_code == 200  # the resend
    assert client.get("/analytics").status_code == 200
    engine = create_engine(postgresql_url)
    with engine.connect() as connection:
        stored = set(connection.execute(text("SELECT uuid FROM issued_cards")).scalars())
    engine.dispose()
    assert set(cards + during) <= stored
    assert _metric(client, "cds_card_records_lost_total") == 0
    assert _metric(client, "cds_card_records_late_total") >= len(during)
    said = [record.getMessage() for record in caplog.records if record.name == "cds_service.storage.availability"]
    assert sum(message.startswith("database unavailable (") for message in said) == 1, said
    assert sum(message.startswith("database answers again") for message in said) == 1, said
    assert not [message for message in said if "refused" in message and "lost" in message], said


def test_a_corrupted_sqlite_file_is_an_outage_not_a_500(tmp_path: Path, make_client: Callable[..., TestClient]) -> None:
    database = tmp_path / "cds.db"
    client = make_client(clock=Clock(NOON), database_url=f"sqlite:///{database}")
    cards = _hook_call(client)
    assert client.get("/analytics").status_code == 200
    with sqlite3.connect(database) as other:  # everything in the file itself, none in its log
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with database.open("r+b") as file:  # every page after the first: the tables' own
        file.seek(4096)
        file.write(b"\xa5" * (database.stat().st_size - 4096))

    assert _hook_call(client)  # the cards still answered
    for path in ("/analytics", "/analytics/report"):
        assert client.get(path).status_code == 503
    refused = client.post(FEEDBACK, json=_overridden(cards[0]))
    assert refused.status_code == 503 and refused.json()["issue"][0]["code"] == "transient"  # worth resending
    assert client.get("/readyz").status_code == 503


@pytest.mark.parametrize("how", ["moved away", "moved away without its log", "deleted"])
def test_a_sqlite_file_gone_from_under_the_service_acknowledges_nothing_it_would_lose(
    how: str, tmp_path: Path, make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    """Its connections would write on to the unlinked file: feedback answered 200, and gone at
    the next start. Refused until the file is back (or the service restarted on a new one); and
    no connection opened meanwhile, which would make an empty file there and lose the WAL."""
    database = tmp_path / "cds.db"
    client = make_client(clock=Clock(NOON), database_url=f"sqlite:///{database}")
    cards = _hook_call(client)
    away = tmp_path / "away"
    away.mkdir()
    for file in [database] if how == "moved away without its log" else tmp_path.glob("cds.db*"):
        file.rename(away / file.name)
    if how == "deleted":
        database.write_bytes(b"")  # an empty file in its place, as a fresh SQLite file starts

    cards += _hook_call(client)
    assert client.post(FEEDBACK, json=_overridden(cards[0])).status_code == 503
    assert client.get("/analytics").status_code == 503
    assert client.get("/readyz").status_code == 503
    time.sleep(2.5)  # the gate's probe, every second, opens no connection to an empty new file
    assert sum("was deleted or replaced" in record.getMessage() for record in caplog.records) == 1
    if how == "deleted":
        return
    assert not database.exists()
    for file in away.iterdir():  # put back
        file.rename(tmp_path / file.name)
    _until(lambda: client.get("/readyz").status_code == 200)
    assert client.post(FEEDBACK, json=_overridden(cards[0])).status_code == 200
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM feedback").fetchone() == (1,)
        stored = {uuid for (uuid,) in connection.execute("SELECT uuid FROM issued_cards")}
    assert set(cards) <= stored


def test_a_revoked_grant_keeps_the_database_down_until_it_is_given_back(
    postgresql_url: str,
    make_client: Callable[..., TestClient],
    on_postgresql: Callable[[str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing held (no hook calls, feedback refused): the gate's probe, which read the tables
    only, said the database was back a second after each refusal, and the next feedback took it
    down again. Its INSERT of no rows is refused as the feedback was: down until the grant."""
    make_client(database_url=postgresql_url)  # the tables, made by their owner
    with _role_with_every_right(postgresql_url, on_postgresql) as (role, as_role):
        client = make_client(clock=Clock(NOON), database_url=as_role, database_wait_seconds=1.0)
        cards = _hook_call(client)
        assert client.get("/readyz").status_code == 200
        on_postgresql(f"REVOKE INSERT ON feedback FROM {role}")
        caplog.set_level(logging.INFO, logger="cds_service.storage")
        for _ in range(4):  # an EHR resending, and nothing else
            assert client.post(FEEDBACK, json=_overridden(cards[0])).status_code == 503
            time.sleep(0.7)
        assert client.get("/readyz").status_code == 503
        on_postgresql(f"GRANT INSERT ON feedback TO {role}")
        _until(lambda: client.get("/readyz").status_code == 200)
        assert client.post(FEEDBACK, json=_overridden(cards[0])).status_code == 200
        said = [r.getMessage() for r in caplog.records if r.name == "cds_service.storage.availability"]
        assert sum(message.startswith("database unavailable (") for message in said) == 1, said
        assert sum(message.startswith("database answers again") for message in said) == 1, said


def test_a_role_that_may_no_longer_store_token_ids_is_not_ready(
    postgresql_url: str, make_client: Callable[..., TestClient], on_postgresql: Callable[[str], None]
) -> None:
    """Every authenticated call stores its token's id, as it does its cards: a role that may
    still write cards and feedback but no longer token ids is refused a write the service needs,
    and ``/readyz`` says so rather than ok."""
    make_client(database_url=postgresql_url)  # the tables, made by their owner
    with _role_with_every_right(postgresql_url, on_postgresql) as (role, as_role):
        client = make_client(clock=Clock(NOON), database_url=as_role)
        assert client.get("/readyz").status_code == 200
        on_postgresql(f"REVOKE INSERT ON seen_tokens FROM {role}")
        assert client.get("/readyz").status_code == 503


@contextmanager
def _role_with_every_right(postgresql_url: str, on_postgresql: Callable[[str], None]) -> Iterator[tuple[str, str]]:
    """A login role with every right on the test's tables (made by their owner first), and the
    URL that connects as it; a test takes its rights away one at a time. Dropped after."""
    url = make_url(postgresql_url)
    schema = str(url.query["options"]).removeprefix("-csearch_path=")
    role = f"cds_probe_{uuid.uuid4().hex[:12]}"
    on_postgresql(
        f"CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA {schema} TO {role}; "
        f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {role}; "
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"
    )
    try:
        yield role, url.set(username=role).render_as_string(hide_password=False)
    finally:
        on_postgresql(f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_another_writer_on_the_sqlite_file_is_no_outage(
    tmp_path: Path, make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    """The readiness probe's INSERT of no rows needs the file's write lock: queued behind another
    connection's long write, past the wait, it marked the database down."""
    database = tmp_path / "cds.db"
    client = make_client(clock=Clock(NOON), database_url=f"sqlite:///{database}", database_wait_seconds=0.5)
    _hook_call(client)
    _until(lambda: client.get("/readyz").status_code == 200)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # an operator's session, a long write of another process
    try:
        assert [client.get("/readyz").status_code for _ in range(3)] == [200, 200, 200]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not [r for r in caplog.records if r.getMessage().startswith("database unavailable")]


def test_feedback_waits_out_a_write_lock_held_a_moment_elsewhere(
    tmp_path: Path, make_client: Callable[..., TestClient]
) -> None:
    """Feedback is what a clinician did, and its client is told it is stored: its write waits as
    long as a statement may run (CDS_DATABASE_STATEMENT_TIMEOUT_SECONDS, 5 s), not the moment a
    hook call waits (0.3 s here). A write lock held for a second elsewhere (another process's
    write, an operator's session) turned it away with a 503, the database marked down."""
    database = tmp_path / "cds.db"
    client = make_client(clock=Clock(NOON), database_url=f"sqlite:///{database}", database_wait_seconds=0.3)
    cards = _hook_call(client)
    _until(lambda: client.get("/readyz").status_code == 200)
    with closing(sqlite3.connect(database, isolation_level=None, check_same_thread=False)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        let_go = After(1.0, holder.rollback)
        answer = client.post(FEEDBACK, json=_overridden(cards[0]))
        let_go.join()
    assert (answer.status_code, answer.json()) == (200, {"received": 1, "stored": 1}), answer.text
    assert _metric(client, "cds_database_up") == 1


def test_hook_calls_are_answered_while_a_feedback_write_waits_for_the_file(
    tmp_path: Path, make_client: Callable[..., TestClient]
) -> None:
    """A feedback write waiting for the SQLite file's lock waits in a database thread: run on
    the event loop, it held every hook call behind it until SQLite gave up (5 s), and then the
    feedback too was turned away."""
    database = tmp_path / "cds.db"
    client = make_client(clock=Clock(NOON), database_url=f"sqlite:///{database}")
    cards = _hook_call(client)
    _until(lambda: client.get("/readyz").status_code == 200)
    with closing(sqlite3.connect(database, isolation_level=None, check_same_thread=False)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        with ThreadPoolExecutor(1) as pool:
            feedback = pool.submit(client.post, FEEDBACK, json=_overridden(cards[0]))
            time.sleep(0.5)  # for the feedback to reach its write; a hook call answered before it proves nothing
            during = _hook_call(client)
            holder.rollback()
            answer = feedback.result(timeout=30)
    assert during and answer.status_code == 200, answer.text


# Bugs of a statement of the service's own: one the database refuses (a column not found), and
# one SQLAlchemy raises on its answer (one row expected, none came), no database error at all.
_BUGS = {
    "no such column": "SELECT no_such_column FROM feedback",
    "no row": "SELECT id FROM feedback WHERE 1 = 0",
}


@pytest.mark.parametrize("bug", _BUGS)
def test_a_statement_of_the_services_own_that_is_wrong_is_a_500_not_an_outage(
    database_url: str, make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch, bug: str
) -> None:
    """A column or table not found, or SQLite's generic error, is also what a bug in a statement
    raises: the probe answering says it is the statement's, a 500 with its traceback, and the
    database stays up (it was marked down, and up again a second later, on every call). An
    error of SQLAlchemy's own about the answer is the statement's without asking."""
    client = make_client(clock=Clock(NOON), database_url=database_url)
    cards = _hook_call(client)

    def a_bug(store: Store, **_: object) -> None:
        with store.engine.connect() as connection:
            connection.exec_driver_sql(_BUGS[bug]).scalar_one()

    monkeypatch.setattr(Store, "record_feedback", a_bug)
    client._transport.raise_server_exceptions = False  # type: ignore[attr-defined]  # the 500, as a client sees it
    assert client.post(FEEDBACK, json=_overridden(cards[0])).status_code == 500
    assert client.get("/readyz").status_code == 200
    assert _metric(client, "cds_database_up") == 1


def test_a_record_refused_then_an_outage_partway_is_counted_lost_once(
    postgresql_url: str, make_client: Callable[..., TestClient], on_postgresql: Callable[[str], None]
) -> None:
    """Two held records written again one at a time: the first refused (a statement error, lost),
    the database down at the second. Held whole, the first was counted lost again on the next try."""
    client = make_client(clock=Clock(NOON), database_url=postgresql_url, database_wait_seconds=1.0)
    _hook_call(client)
    assert client.get("/analytics").status_code == 200  # its record written first
    refused, second = str(uuid.uuid4()), str(uuid.uuid4())
    on_postgresql(_TRIGGER.format(code="25006"))  # down: both records held
    for hook_instance in (refused, second):
        request = fixture(REQUEST) | {"hookInstance": hook_instance}
        assert client.post(SELECT, json=request).status_code == 200
    _until(lambda: _metric(client, "cds_card_records_pending") == 2, within=5)

    def refusing(second_code: str | None) -> str:
        """The first record refused for itself; the second, if ``second_code``, as the database's state."""
        then = f"ELSIF NEW.hook_instance = '{second}' THEN RAISE EXCEPTION 'down' USING ERRCODE = '{second_code}';"
        return f"""
            CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            IF NEW.hook_instance = '{refused}' THEN RAISE EXCEPTION 'bad' USING ERRCODE = '23514';
            {then if second_code else ""} END IF; RETURN NEW; END $$;"""

    on_postgresql(refusing("25006"))  # the probe answers: the split meets the outage at the second
    time.sleep(2.5)
    on_postgresql(refusing(None))
    _until(lambda: _metric(client, "cds_card_records_pending") == 0, within=5)
    assert _metric(client, "cds_card_records_lost_total") == 1
    engine = create_engine(postgresql_url)
    with engine.connect() as connection:
        stored = set(connection.execute(text("SELECT hook_instance FROM issued_cards")).scalars())
    engine.dispose()
    assert second in stored and refused not in stored
