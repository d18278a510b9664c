"""A ``cds-service serve`` refused for a configuration that cannot work, or for a database it must
not start on (its patient-id key lost, another process serving it), leaves nothing behind.

It made the data directory, the database (migrated) and a patient-id key, then refused: an
operator who then set ``CDS_PATIENT_ID_KEY`` was refused again, "the patient-id key is not the
one this database's patients were stored with", for a key no patient was ever stored with."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from cds_service.settings import Settings
from cds_service.storage.store import open_store
from tests.feedback_calls import first_release_tables
from tests.serving import CLI, launch, stopped

_KEY = "k" * 32
# How long a refused start may take before it is a hang: it imports and loads all the service
# does, started while the session's other `serve` processes start (tests/conftest.py).
_START = 180


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        pytest.param((), {}, "CDS_AUTH_MODE is required but no client is trusted", id="no-trusted-client"),
        pytest.param(
            ("--workers", "2"), {"CDS_AUTH_MODE": "off"}, "--workers needs a database the processes share", id="workers"
        ),
        pytest.param(
            ("--host", "0.0.0.0"),  # after launch's own --host: the last one given is taken
            {"CDS_TRUST_SANDBOX": "true"},
            "CDS_PUBLIC_URL is not set and the service listens on 0.0.0.0",
            id="no-public-url",
        ),
        pytest.param(
            (),
            {"CDS_AUTH_MODE": "off", "CDS_DATABASE_URL": "sqlite:///{data}/cds.db?timeout=abc"},
            "CDS_DATABASE_URL: an option of the wrong type for the driver",
            id="database-url-option",
        ),
    ],
)
def test_a_refused_start_makes_no_directory_database_or_key(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    data = tmp_path / "data"
    server, _ = launch(data, *args, **{name: value.format(data=data) for name, value in env.items()})
    code, output = stopped(server, within=_START)
    assert code == 2, output
    assert message in output
    assert not data.exists(), sorted(path.name for path in data.iterdir())


def test_after_a_start_refused_for_no_trusted_client_a_configured_key_is_taken(tmp_path: Path) -> None:
    """The operator's next step, a key of their own: taken, as by a first start."""
    data = tmp_path / "data"
    code, output = stopped(launch(data)[0], within=_START)
    assert code == 2 and "no client is trusted" in output
    clean = {name: value for name, value in os.environ.items() if not name.startswith("CDS_")}
    migrated = subprocess.run(
        [*CLI, "migrate"],
        env={**clean, "CDS_DATA_DIR": str(data), "CDS_PATIENT_ID_KEY": _KEY},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert not (data / "patient-id.key").exists()


def _disk(*roots: Path) -> dict[Path, bytes | None]:
    """Every file (its bytes) and directory (None) under ``roots``: what a refused start must leave as it was."""
    return {
        path: path.read_bytes() if path.is_file() else None
        for root in roots
        if root.exists()
        for path in root.rglob("*")
    }


@pytest.mark.parametrize("where", ["data-directory", "sqlite-elsewhere", "postgresql"])
def test_a_start_on_a_database_without_its_key_makes_no_key(
    tmp_path: Path, request: pytest.FixtureRequest, where: str
) -> None:
    """A database restored without its patient-id key (or named by a URL beside a data directory
    of its own): the start made a new key, then refused it for the database's fingerprint. Now it
    is refused before: no key, no data directory is left, and the key restored next is taken."""
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    url = {
        "data-directory": None,
        "sqlite-elsewhere": f"sqlite:///{elsewhere / 'cds.db'}",
        "postgresql": request.getfixturevalue("postgresql_url") if where == "postgresql" else None,
    }[where]
    database = {"CDS_DATABASE_URL": url} if url else {}
    open_store(Settings(data_dir=data, database_url=url)).engine.dispose()  # a first start
    key = (data / "patient-id.key").read_text()
    if url:
        shutil.rmtree(data)  # the data directory the database was made with: not this start's
    else:
        (data / "patient-id.key").unlink()
    before = _disk(data, elsewhere)
    code, output = stopped(launch(data, CDS_AUTH_MODE="off", **database)[0], within=_START)
    assert code == 2, output
    assert _disk(data, elsewhere) == before
    assert data.exists() == (url is None)
    assert "no patient-id key" in output and "holds patients stored with one" in output, output
    assert key not in output
    migrated = _cli("migrate", CDS_DATA_DIR=str(data), CDS_PATIENT_ID_KEY=key, **database)  # the operator's next step
    assert migrated.returncode == 0, migrated.stderr


def test_a_second_serve_migrates_nothing_before_it_is_refused(tmp_path: Path) -> None:
    """A SQLite file served by another process (a release before, its schema older: here its
    lock held by the test) was migrated under it by the second ``serve``, which only then found
    the file served and stopped. Now the file is claimed first: refused, nothing written."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "patient-id.key").write_text(_KEY)
    engine = create_engine(f"sqlite:///{data / 'cds-service.db'}")
    with engine.begin() as connection:
        first_release_tables(connection)
    engine.dispose()
    with (data / "cds-service.db.migrate.serving").open("ab") as serving:
        fcntl.flock(serving, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what `serve` holds while it serves the file
        before = _disk(data)
        code, output = stopped(launch(data, CDS_AUTH_MODE="off")[0], within=_START)
    assert code == 2, output
    assert "another process serves" in output
    assert _disk(data) == before


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("CDS_")}
    return subprocess.run([*CLI, *args], env={**clean, **env}, capture_output=True, text=True, timeout=60)
