"""The start on a database another process holds, or named by a URL without its port: another
instance's migration is waited out, and what cannot be is told in one line for a supervisor to
retry (exit 3), never a traceback."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from cds_service.cli import main
from cds_service.settings import read_settings
from cds_service.storage import migrations
from tests.conftest import After

Start = Callable[..., tuple[int, str]]


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Start:
    """``cds-service migrate``, the start every command that opens the database begins with (a
    report reads the database only as it is), with only the given settings: its exit code and
    standard error."""

    def run(**settings: str) -> tuple[int, str]:
        monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path / "var"))
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
        code = main(["migrate"])
        return code, capsys.readouterr().err

    return run


def test_a_sqlite_file_another_process_is_writing_stops_a_new_start_in_one_line(start: Start, tmp_path: Path) -> None:
    """A new database's tables are made in a write; another process holding the file's write lock
    (a backup tool, a second service started by hand) is waited for as long as a statement may
    run (0.2 s here, not SQLite's own 5 s), then the start stops in one line: it was a traceback."""
    database = tmp_path / "var" / "cds-service.db"
    database.parent.mkdir()
    database.touch(mode=0o600)  # as the service makes it: one other users may read is said at the start
    with closing(sqlite3.connect(database, isolation_level=None, check_same_thread=False)) as holder:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("CREATE TABLE someone_elses (x INTEGER)")
        let_go = After(3.0, holder.rollback)  # a start waiting past its timeout would get in
        code, err = start(CDS_DATABASE_STATEMENT_TIMEOUT_SECONDS="0.2")
        let_go.cancel()
        let_go.join()
        holder.rollback()
    assert (code, err) == (
        3,
        f"cds-service: cannot start on the database {database}: SQLITE_BUSY: database is locked\n",
    )
    assert start()[0] == 0  # once it lets go, the same start goes through


def test_a_start_waits_out_another_instances_migration_however_long_it_takes(start: Start, postgresql_url: str) -> None:
    """Another instance of the deployment migrating (here, holding the lock each start takes
    while it tries) for longer than a statement may run, under a role whose default lock
    timeout is shorter still: the start waits for it and goes on, where it failed (exit 3) and a
    supervisor restarted it into the same wait."""
    holder = create_engine(postgresql_url).connect()
    holder.execute(text(f"SELECT pg_advisory_lock({migrations._TRYING})"))
    holder.commit()
    let_go = After(2.5, holder.execute, text("SELECT pg_advisory_unlock_all()"))
    url = make_url(postgresql_url)
    short_locks = url.update_query_dict({"options": f"{url.query['options']} -c lock_timeout=300"})
    try:
        code, err = start(
            CDS_DATABASE_URL=short_locks.render_as_string(hide_password=False),
            CDS_DATABASE_STATEMENT_TIMEOUT_SECONDS="1",
        )
    finally:
        let_go.join()
        holder.close()
    assert code == 0, err


def test_a_server_out_of_reach_is_named_with_the_port_it_was_tried_on(start: Start) -> None:
    """A URL without a port is tried on PostgreSQL's 5432: the line names that port, where the
    operator looks for the server. Needs no server."""
    code, err = start(CDS_DATABASE_URL="postgresql://cds:s3cret@no-such-host.invalid/cds")
    assert code == 3 and err.count("\n") == 1 and "s3cret" not in err, err
    assert err.startswith(
        "cds-service: cannot start on the database no-such-host.invalid:5432/cds (CDS_DATABASE_URL): "
    )
