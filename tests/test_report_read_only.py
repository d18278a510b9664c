"""How a reader (``cds-service report``) opens a SQLite file in a directory it cannot write: as
SQLite opens it read-only, and as a file nothing changes (``immutable``) only when that fails (a
WAL database, no ``-shm`` beside it that SQLite could make) and no ``-wal`` or ``-shm`` says a
process serves it. Chosen once, from a ``-wal`` file absent at the start, a service starting
meanwhile was read as the database file alone: its WAL's writes unseen ("no such table" on a
database just made). Run as a user no mode stops (``nobody`` when the tests run as root), with
no mount of their own: tests/test_report_backup.py needs CAP_SYS_ADMIN."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

_READER = """
import sys
from sqlalchemy import make_url, text
from cds_service.storage.engine import make_engine
engine = make_engine(make_url(f"sqlite:///{sys.argv[1]}"), statement_timeout=2, read_only=True)
print("ready", flush=True)
sys.stdin.readline()  # the database changed meanwhile
with engine.connect() as connection:
    print(connection.execute(text("SELECT count(*) FROM things")).scalar(), flush=True)
"""


def _as_reader() -> list[str]:
    """The prefix running a command as a user the directory's mode stops."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root, and no setpriv to run the reader as another user")
    return ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]


def _read_after(directory: Path, change: object) -> tuple[int, str]:
    """The reader's engine made, then ``change()`` run, then its count of ``things``."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    reader = subprocess.Popen(
        [*_as_reader(), sys.executable, "-c", _READER, str(directory / "cds-service.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "ready\n", reader.communicate()
        change()  # type: ignore[operator]
        output, errors = reader.communicate("go\n", timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    return reader.returncode, output + errors


@pytest.fixture
def directory() -> Iterator[Path]:
    """A directory the reader may read and not write once made 0555, in a temporary one it may
    enter (pytest's ``tmp_path`` is closed to other users)."""
    root = Path(tempfile.mkdtemp(prefix="cds-read-only-"))
    root.chmod(0o711)
    made = root / "backups"
    made.mkdir()
    try:
        yield made
    finally:
        made.chmod(0o755)
        shutil.rmtree(root)


def test_a_service_started_after_the_reader_is_read_with_its_wal(directory: Path) -> None:
    """No ``-wal`` when the reader's engine is made; a service then makes the tables and writes,
    its WAL not yet checkpointed: the reader reads what it wrote."""
    database = directory / "cds-service.db"
    sqlite3.connect(database).close()  # an empty file, as a first start leaves it for a moment
    database.chmod(0o644)
    service = sqlite3.connect(database)
    directory.chmod(0o555)

    def service_starts() -> None:
        service.execute("PRAGMA journal_mode=WAL")
        service.execute("PRAGMA wal_autocheckpoint=0")
        service.execute("CREATE TABLE things (id INTEGER)")
        service.execute("INSERT INTO things VALUES (1), (2)")
        service.commit()
        for beside in ("-wal", "-shm"):
            Path(f"{database}{beside}").chmod(0o644)

    try:
        code, output = _read_after(directory, service_starts)
    finally:
        service.close()
        directory.chmod(0o755)
    assert (code, output) == (0, "2\n"), output


def test_a_wal_backup_alone_is_read_as_a_file_nothing_changes(directory: Path) -> None:
    """A WAL database with no ``-wal`` or ``-shm`` beside it (a backup): SQLite cannot make the
    ``-shm`` it needs to read it read-only, and nothing serves it: read as immutable."""
    database = directory / "cds-service.db"
    with closing(sqlite3.connect(database)) as made:
        made.execute("PRAGMA journal_mode=WAL")
        made.execute("CREATE TABLE things (id INTEGER)")
        made.execute("INSERT INTO things VALUES (1), (2), (3)")
        made.commit()
    assert not Path(f"{database}-wal").exists()
    database.chmod(0o644)
    directory.chmod(0o555)
    try:
        code, output = _read_after(directory, lambda: None)
    finally:
        directory.chmod(0o755)
    assert (code, output) == (0, "3\n"), output
