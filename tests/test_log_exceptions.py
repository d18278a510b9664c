"""An exception in the log keeps its traceback but never a database error's text: PostgreSQL
quotes there the row or key it refused (a clinician's comment). Each log format, in a process of
its own (logging's configuration is the process's), meets the shapes an error takes on its way
up: wrapped by SQLAlchemy, raised by psycopg, in an exception group, in a loop of groups, in
a task nobody awaited (asyncio's own line), uncaught in a thread, in a finaliser (Python's
"Exception ignored", also for an object that will not be named, where the interpreter has the
means to send one) and uncaught in the main thread. A connection psycopg could not open keeps
its message, which says what to mend; an error without a SQLSTATE from mid-statement does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.conftest import FIXTURES

SECRET = "Pt reports dizziness, wife drives her"

_ERRORS = """
import asyncio, gc, json, logging, sqlite3, sys, threading
import psycopg.errors
from sqlalchemy.exc import IntegrityError
from cds_service.observability import configure_logging

configure_logging("INFO", sys.argv[1])
log = logging.getLogger("cds_service.test")
secret = sys.argv[2]

def wrapped():
    raise IntegrityError("INSERT INTO feedback ...", {}, sqlite3.IntegrityError(f"Failing row contains ({secret})"))

def raised():
    raise psycopg.errors.UniqueViolation(f"duplicate key value\\nDETAIL:  Key (comment)=({secret}) already exists.")

def grouped():
    try:
        raised()
    except Exception as error:
        raise ExceptionGroup("writes", [error, ValueError("another")])

def refused():  # psycopg's connection failure: no SQLSTATE
    raise psycopg.OperationalError('connection failed: connection to server at "db.example", port 5432 failed: FATAL:  database "cds" does not exist')

def cut():  # no SQLSTATE either, but in the middle of a statement: libpq's buffer could hold the server's words
    raise psycopg.OperationalError(f"consuming input failed: ERROR:  Key (comment)=({secret})")

def looped():  # the member re-raised: its context is the group that holds it
    try:
        grouped()
    except ExceptionGroup as group:
        raise group.exceptions[0]

for name, fail in [("wrapped", wrapped), ("raised", raised), ("grouped", grouped), ("looped", looped), ("refused", refused), ("cut", cut)]:
    try:
        fail()
    except Exception:
        log.exception("failed: %s", name)

async def unawaited():
    asyncio.get_running_loop().create_task(asyncio.to_thread(raised))
    await asyncio.sleep(0.1)

asyncio.run(unawaited())
gc.collect()  # the task is freed, and asyncio says its exception was never retrieved

thread = threading.Thread(target=raised, name="writer")
thread.start()
thread.join()

class Finalised:
    def __del__(self):
        raised()

Finalised()  # freed at once: its finaliser's exception has no caller to reach

class Unnamed:  # what a C extension could pass as the object: it will not say its name
    def __getattr__(self, name):
        raise RuntimeError(secret)

try:
    import _testcapi  # the interpreter's test module: not in every Python build
except ImportError:
    pass
else:
    try:
        raised()
    except Exception as error:
        _testcapi.write_unraisable_exc(error, None, Unnamed())
    print("unnamed tried", file=sys.stderr)

print("done", file=sys.stderr)
raised()  # uncaught in the main thread: the process ends with it
"""


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_database_errors_text_never_reaches_the_log_its_class_and_traceback_do(log_format: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _ERRORS, log_format, SECRET],
        capture_output=True,
        text=True,
        cwd=FIXTURES.parent,
        timeout=60,
    )
    log = done.stderr
    assert done.returncode == 1 and "\ndone\n" in log, log[-3000:]
    assert SECRET not in log
    for name in ("wrapped", "raised", "grouped", "looped", "refused", "cut"):
        assert f"failed: {name}" in log
    assert "IntegrityError" in log and "UniqueViolation 23505" in log and "ValueError: another" in log
    assert (
        'database \\"cds\\" does not exist' in log if log_format == "json" else 'database "cds" does not exist' in log
    )
    assert "in raised" in log  # the frames are kept
    assert "Task exception was never retrieved" in log
    assert "Uncaught exception in thread writer" in log
    assert "Exception ignored in Finalised.__del__" in log
    assert "Uncaught exception" in log.split("\ndone\n")[1]
    if "unnamed tried" in log:
        assert "Exception ignored in Unnamed" in log
    if log_format == "json":  # one object a line, which a log shipper reads
        lines = [line for line in log.splitlines() if line not in ("done", "unnamed tried")]
        assert all(json.loads(line)["level"] == "ERROR" for line in lines), log[-3000:]


# What uvicorn's workers do: the app's factory, in a process multiprocessing spawned.
_WORKER = """
import multiprocessing
from cds_service.app import app_from_environment
worker = multiprocessing.get_context("spawn").Process(target=app_from_environment)
worker.start()
worker.join()
raise SystemExit(worker.exitcode)
"""


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "cds_service", "serve", "--port", "1"],  # the main process, before it serves
        # A worker's start, in a process multiprocessing started, as uvicorn's are.
        ["-c", _WORKER],
    ],
    ids=["serve", "worker"],
)
def test_a_service_whose_database_is_not_there_says_so_in_one_line(
    command: list[str], postgresql_server: str, tmp_path: Path
) -> None:
    """A database that is not there stops the start with the connection's own message, which names
    it, in one line (it was a traceback, logged as JSON), and uvicorn's code for a failed start (3),
    for a supervisor to retry with its back-off; the URL's password is not in it."""
    missing = make_url(postgresql_server).set(database="no_such_database", password="s3cret")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    environment |= {
        "CDS_DATABASE_URL": missing.render_as_string(False),
        "CDS_DATA_DIR": str(tmp_path),
        "CDS_AUTH_MODE": "off",
    }
    done = subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, cwd=FIXTURES.parent, env=environment, timeout=60
    )
    assert done.returncode == 3, done.stderr[-3000:]
    said = f"cds-service: cannot start on the database {missing.host}:{missing.port or 5432}/no_such_database"
    assert done.stderr.startswith(said) and done.stderr.count("\n") == 1, done.stderr[-3000:]
    assert 'database "no_such_database" does not exist' in done.stderr and "s3cret" not in done.stderr


def test_a_worker_started_on_a_config_file_edited_into_error_says_so_in_one_line(tmp_path: Path) -> None:
    """uvicorn starts a worker again when one dies, and that worker reads the settings again: a file
    edited since the start was told by multiprocessing's traceback, and the worker exited 1, on which
    uvicorn's parent started another at once, for ever."""
    config = tmp_path / "cds.toml"
    config.write_text('port = "eighty"\n[rules.cyclobenzaprine-duration]\nmax_days = 14\n')
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    environment |= {"CDS_CONFIG_FILE": str(config), "CDS_DATA_DIR": str(tmp_path), "CDS_AUTH_MODE": "off"}
    done = subprocess.run(
        [sys.executable, "-c", _WORKER],
        capture_output=True,
        text=True,
        cwd=FIXTURES.parent,
        env=environment,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr[-3000:]
    assert done.stderr == (
        "cds-service: invalid configuration: port: a whole number is needed here, in digits alone "
        f"(set in CDS_CONFIG_FILE ({config}))\n"
    )


_INTERRUPTED = """
import sys
import psycopg.errors
from cds_service.observability import configure_logging

configure_logging("INFO", "json")
try:
    raise psycopg.errors.UniqueViolation(f"DETAIL:  Key (comment)=({sys.argv[1]}) already exists.")
except Exception:
    raise KeyboardInterrupt  # Ctrl-C while an error was being handled
"""


def test_ctrl_c_while_a_database_error_is_handled_tells_neither_text() -> None:
    """Python's own line for Ctrl-C prints the exception it interrupted, whole."""
    done = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED, SECRET], capture_output=True, text=True, cwd=FIXTURES.parent, timeout=60
    )
    assert done.returncode != 0 and SECRET not in done.stderr, done.stderr[-3000:]
    (line,) = [json.loads(line) for line in done.stderr.splitlines()]
    assert line["message"] == "Interrupted" and "UniqueViolation 23505" in line["exception"]
