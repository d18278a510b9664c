"""The files the service makes for its SQLite database are its user's alone (0600), whatever the
umask and whoever made the directory: the database and its write-ahead log hold feedback's
comments, free text that may name a patient, and the card records. In a data directory the site
made itself (0755), under the usual umask (022), all but the patient-id key were 0644: any local
user could read them, and open the lock files to hold up the service's start (an operator's review)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient

from cds_service.settings import Settings
from cds_service.storage.store import open_store
from tests.serving import serve


def modes(directory: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in directory.iterdir()}


def test_every_file_serve_makes_for_its_sqlite_database_is_its_users_alone(tmp_path: Path) -> None:
    """Read while it serves, when SQLite's -wal and -shm files are there (it removes them at exit)."""
    data = tmp_path / "site"
    data.mkdir()
    data.chmod(0o755)  # the site's own: the service leaves a directory it did not make as it is
    umask = os.umask(0o022)  # the process started under it
    try:
        server, port = serve(data, CDS_AUTH_MODE="off")
    finally:
        os.umask(umask)
    try:
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
        made = modes(data)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert made == {
        "cds-service.db": 0o600,
        "cds-service.db-wal": 0o600,
        "cds-service.db-shm": 0o600,
        "cds-service.db.migrate.lock": 0o600,
        "cds-service.db.migrate.serving": 0o600,
        "patient-id.key": 0o600,
    }
    assert stat.S_IMODE(data.stat().st_mode) == 0o755


@pytest.mark.parametrize(("mode", "said"), [(0o644, True), (0o640, False)], ids=["earlier-release", "backup-group"])
def test_a_database_that_exists_keeps_its_mode_and_open_to_others_it_is_said(
    make_client: Callable[..., TestClient],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    mode: int,
    said: bool,
) -> None:
    """Its mode is the operator's, which the service cannot tell from an accident (a group its
    backups run as may read it), and SQLite gives the -wal and -shm files it makes that mode: a
    database an earlier release made 0644 is said at the start, with what to do, and left as it is."""
    open_store(settings).engine.dispose()  # made, as by the first start; SQLite removes its -wal and -shm
    database = settings.data_dir / "cds-service.db"
    database.chmod(mode)
    caplog.set_level("WARNING", logger="cds_service.storage")
    client = make_client()
    assert client.get("/readyz").status_code == 200
    assert {name: made for name, made in modes(settings.data_dir).items() if name.startswith("cds-service.db")} == {
        "cds-service.db": mode,
        "cds-service.db-wal": mode,
        "cds-service.db-shm": mode,
        "cds-service.db.migrate.lock": 0o600,
    }
    said_so = [record.getMessage() for record in caplog.records if record.name == "cds_service.storage.data_dir"]
    assert said_so == (
        [
            f"{database} may be read by other users (mode 0644), and so may the -wal and -shm files SQLite makes "
            f"with its mode: chmod o-rwx {database}*"
        ]
        if said
        else []
    )
