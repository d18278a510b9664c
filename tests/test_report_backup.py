"""``cds-service report`` reads a SQLite backup kept where it may not write (a read-only volume, a
directory of another user): SQLite makes a ``-shm`` file beside a WAL database to read it, and
the report stopped "unable to open database file" (an operator's review)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.pipeline.knowledge import Knowledge
from cds_service.settings import Settings
from tests.conftest import NOON, TODAY, Clock
from tests.feedback_calls import issued, overridden, send_feedback
from tests.serving import CLI

DAY = ["--from", TODAY.isoformat(), "--to", TODAY.isoformat(), "--period", "day"]


def _backup_of_a_served_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, knowledge_for: Callable[[Settings], Knowledge | None]
) -> Path:
    """A directory holding a backup and its key, taken as docs/operations.md says: SQLite's online
    backup (``sqlite3 cds-service.db ".backup …"`` is the same API) of a database being served,
    one card in it overridden."""
    for name in [name for name in os.environ if name.startswith("CDS_")]:
        monkeypatch.delenv(name)
    settings = Settings(data_dir=tmp_path / "var", auth_mode="off")
    app = create_app(settings, knowledge=knowledge_for(settings), clock=Clock(NOON))
    backups = tmp_path / "backups"
    backups.mkdir()
    with TestClient(app) as client:
        card = issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
        send_feedback(client, overridden(card, "already-addressed"))
        with (
            closing(sqlite3.connect(tmp_path / "var" / "cds-service.db")) as live,
            closing(sqlite3.connect(backups / "cds-service.db")) as copy,
        ):
            live.backup(copy)
    app.state.runtime.store.engine.dispose()
    shutil.copy2(tmp_path / "var" / "patient-id.key", backups / "patient-id.key")
    return backups


@contextmanager
def _read_only(directory: Path) -> Iterator[list[str]]:
    """The command prefix that runs a command with ``directory`` read-only: a read-only bind mount
    of its own (as root, whom no mode stops), or the directory's mode 0555."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield []
        finally:
            directory.chmod(0o755)
        return
    mount = f'mount --bind "{directory}" "{directory}" && mount -o remount,bind,ro "{directory}" && exec "$@"'
    prefix = ["unshare", "--mount", "sh", "-c", mount, "sh"]
    if shutil.which("unshare") is None or subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("root, and no read-only bind mount here: no directory is read-only to this test")
    probe = subprocess.run([*prefix, "touch", str(directory / "probe")], capture_output=True)
    assert probe.returncode != 0, "the bind mount was not read-only"
    yield prefix


def test_a_report_reads_a_backup_in_a_directory_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, knowledge_for: Callable[[Settings], Knowledge | None]
) -> None:
    backups = _backup_of_a_served_database(tmp_path, monkeypatch, knowledge_for)
    before = sorted(path.name for path in backups.iterdir())
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CDS_")}, "CDS_DATA_DIR": str(backups)}
    with _read_only(backups) as prefix:
        report = subprocess.run(
            [*prefix, *CLI, "report", *DAY], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
    assert report.returncode == 0, report.stderr
    row = next(line.split() for line in report.stdout.splitlines() if line.startswith("cyclobenzaprine-duration"))
    assert row == ["cyclobenzaprine-duration", "1", "0", "1", "0", "0%", "100%", "1"]
    assert sorted(path.name for path in backups.iterdir()) == before  # read as it is: nothing made beside it
