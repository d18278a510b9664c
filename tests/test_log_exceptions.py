"""An exception in the log keeps its traceback but never a database error's text: PostgreSQL
quotes there the row or key it refused (a clinician's comment). Each log format, in a process of
its own (logging's configuration is the process's), meets the shapes an error takes on its way
up: wrapped by SQLAlchemy, raised by psycopg, in an exception group, in a loop of groups, in
a task nobody awaited (asyncio's own line), uncaught in a thread, and in a finaliser (Python's
"Exception ignored")."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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

def looped():  # the member re-raised: its context is the group that holds it
    try:
        grouped()
    except ExceptionGroup as group:
        raise group.exceptions[0]

for name, fail in [("wrapped", wrapped), ("raised", raised), ("grouped", grouped), ("looped", looped)]:
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
print("done", file=sys.stderr)
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
    assert done.returncode == 0 and log.rstrip().endswith("done"), log[-3000:]
    assert SECRET not in log
    for name in ("wrapped", "raised", "grouped", "looped"):
        assert f"failed: {name}" in log
    assert "IntegrityError" in log and "UniqueViolation 23505" in log and "ValueError: another" in log
    assert "in raised" in log  # the frames are kept
    assert "Task exception was never retrieved" in log
    assert "Uncaught exception in thread writer" in log
    assert "Exception ignored in Finalised.__del__" in log
    if log_format == "json":  # one object a line, which a log shipper reads
        *lines, last = log.rstrip().splitlines()
        assert last == "done" and all(json.loads(line)["level"] == "ERROR" for line in lines), log[-3000:]
