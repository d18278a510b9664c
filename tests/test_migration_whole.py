"""A schema migration that fails partway leaves the database as it was, at its version, and the
next start migrates it whole: on SQLite each ALTER TABLE and CREATE INDEX before a step's first
row written was committed on its own (pysqlite begins a transaction only for INSERT, UPDATE and
DELETE), and a step stopped midway left its columns without its version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from cds_service.cli import main
from cds_service.settings import read_settings
from cds_service.storage.migrations import SCHEMA_VERSION
from cds_service.storage.schema import schema_version
from tests.feedback_calls import DAY_1, first_release_tables

# Version 2's second statement, after its ALTER TABLE: made beforehand under the same name, it
# fails the step as a kill or a full disk would stop it, after the first statement ran.
_IN_THE_WAY = "CREATE INDEX ix_issued_cards_patient_rule ON issued_cards (rule_id)"


def _old_database(url: str, *, versioned: bool, in_the_way: bool = True) -> None:
    """A database as the first release left it: before versioning, or stamped version 1."""
    engine = create_engine(url)
    with engine.begin() as connection:
        first_release_tables(connection)
        if versioned:
            schema_version.create(connection)
            connection.execute(
                schema_version.insert(), {"version": 1, "description": "as released", "applied_at": DAY_1}
            )
        if in_the_way:
            connection.execute(text(_IN_THE_WAY))
    engine.dispose()


def _state(url: str) -> tuple[bool, int | None]:
    """Whether issued_cards has version 2's column, and the version stamped (None: no table)."""
    engine = create_engine(url)
    with engine.connect() as connection:
        columns = {column["name"] for column in inspect(connection).get_columns("issued_cards")}
        versioned = inspect(connection).has_table("schema_version")
        version = connection.execute(select(func.max(schema_version.c.version))).scalar() if versioned else None
    engine.dispose()
    return "indicator" in columns, version


@pytest.mark.parametrize("versioned", [False, True], ids=["before-versioning", "version-1"])
def test_a_migration_stopped_partway_leaves_the_database_as_it_was_and_the_next_start_migrates_it_whole(
    database_url: str, versioned: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Before: a version table made and left empty ("restore it from a backup"), or version 2's
    column kept at version 1 ("duplicate column name"): either way no start went through again."""
    monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CDS_DATABASE_URL", database_url)
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    _old_database(database_url, versioned=versioned)

    with pytest.raises(DBAPIError, match="ix_issued_cards_patient_rule"):
        main(["migrate"])
    assert _state(database_url) == (False, 1 if versioned else None)

    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_issued_cards_patient_rule"))
    engine.dispose()
    assert main(["migrate"]) == 0
    assert _state(database_url) == (True, SCHEMA_VERSION)


# ``cds-service migrate`` killed (SIGKILL: no rollback, no cleanup) as version 2's second
# statement is about to run, its first done.
_KILLED_MIDWAY = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from cds_service.cli import main

def midway(_conn, _cursor, statement, *_):
    if statement.startswith("CREATE INDEX ix_issued_cards_patient_rule"):
        os.kill(os.getpid(), signal.SIGKILL)

event.listen(Engine, "before_cursor_execute", midway)
sys.exit(main(["migrate"]))
"""


def test_a_migration_killed_partway_on_sqlite_is_undone_and_the_next_start_migrates_it_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A crash (kill -9, power lost) midway through a step: the WAL's uncommitted pages are
    never read, and the file lock goes with the process."""
    url = f"sqlite:///{tmp_path / 'cds-service.db'}"
    _old_database(url, versioned=True, in_the_way=False)
    clean = {name: value for name, value in os.environ.items() if not name.startswith("CDS_")}
    settings = {"CDS_DATA_DIR": str(tmp_path / "var"), "CDS_DATABASE_URL": url}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_MIDWAY], env={**clean, **settings}, capture_output=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert _state(url) == (False, 1)

    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["migrate"]) == 0
    assert _state(url) == (True, SCHEMA_VERSION)
