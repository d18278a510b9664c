"""Degrade, don't fail: the database calls of the request paths, bounded in time, and whether
the database is up.

A clinician waiting on an order must not wait on a database. Every call of a request path goes
through ``DatabaseGate.run``: on PostgreSQL in a small pool of threads of its own (a database
that hangs holds those threads, never the ones evaluation and the other routes use), for at most
``CDS_DATABASE_WAIT_SECONDS``. A timeout, or an error that is the database's state rather than
the statement's (``is_outage``: unreachable, or refusing every write alike), marks it down: from
then on calls skip it at once, and one probe asks it every second until it answers, when the
``on_recovery`` callbacks write out what was held meanwhile (``storage.held``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool

from cds_service.observability import Metrics
from cds_service.storage.engine import deployment_fault
from cds_service.tracebacks import database_error

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors that say the database cannot be reached or cannot take the statement now (connection
# refused or lost, statement or pool timeout, SQLite's file locked or unwritable), not that the
# statement itself is wrong: these, and those ``is_outage`` adds, mark the database down.
OUTAGES = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
# PostgreSQL's, beyond those the start-up tells (``deployment_fault``): a table or a column gone
# from under a running service (a hand's DROP, an older dump restored).
_SCHEMA_GONE = ("42P01", "42703")
RETRY_EVERY_SECONDS = 1.0
# What a client told to come back (feedback answered 503) is asked to wait.
RETRY_AFTER_SECONDS = 5


class DatabaseUnavailable(Exception):
    """The database did not answer in time, failed as an unreachable one does, or is known down."""


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` is the database's state, to be waited out with the records held, rather
    than the statement's: a read-only standby, a full disk, a corrupted file, a dropped table
    refuse every write alike, and a record refused as a bad statement is lost."""
    if isinstance(error, OUTAGES):
        return True
    if not isinstance(error, DBAPIError):
        return False
    return deployment_fault(error) is not None or getattr(error.orig, "sqlstate", None) in _SCHEMA_GONE


def _may_be_the_statements(error: SQLAlchemyError) -> bool:
    """A table or column not found (PostgreSQL's 42P01 and 42703; SQLite's generic SQLITE_ERROR,
    which a syntax error shares): gone from the database, or never there, the statement's bug."""
    original = getattr(error, "orig", None)
    state = getattr(original, "sqlstate", None) or getattr(original, "sqlite_errorname", None)
    return state in (*_SCHEMA_GONE, "SQLITE_ERROR")


class DatabaseGate:
    def __init__(self, ping: Callable[[], object], *, wait: float, embedded: bool, metrics: Metrics) -> None:
        self._ping = ping
        self.wait = wait
        # SQLite answers from a local file in tens of microseconds, less than a hop to a thread
        # and back costs (about 0.8 ms on two cores): it runs inline, and fails fast if it fails.
        self.embedded = embedded
        self._metrics = metrics
        self._threads: _Threads | None = None
        self.down_since: float | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._probe: Future[object] | None = None
        self._on_recovery: list[Callable[[], Awaitable[None]]] = []
        self._writing_out = False

    def on_recovery(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._on_recovery.append(callback)

    async def run(
        self, call: Callable[..., T], /, *args: Any, wait: float | None = None, threaded: bool = False, **kwargs: Any
    ) -> T:
        """``call(*args, **kwargs)`` against the database, within ``wait`` seconds (the gate's by
        default); raises ``DatabaseUnavailable`` instead of waiting longer or hitting a known outage.
        ``threaded``: in a thread even on SQLite (a write that waits for the disk)."""
        if self.down_since is not None:
            raise DatabaseUnavailable("the database is down")
        limit = wait or self.wait
        try:
            if self.embedded and not threaded:
                return call(*args, **kwargs)
            job = asyncio.wrap_future(self._pool().submit(partial(call, *args, **kwargs)))
            # On time out the job is cancelled if it has not started; one already running is left
            # to the connection's own timeouts.
            return await asyncio.wait_for(job, limit)
        except TimeoutError:
            self.mark_down(f"no answer within {limit:g} s")
            raise DatabaseUnavailable(f"no answer within {limit:g} s") from None
        except SQLAlchemyError as error:
            if not await self.outage(error, limit):
                raise
            said = database_error(error)  # its class and SQLSTATE: a standby's, a grant's, a table's
            self.mark_down(said)
            raise DatabaseUnavailable(said) from error

    async def run_apart(self, call: Callable[[], T]) -> T:
        """``call()`` in a thread of Starlette's pool, not the gate's, and not bounded by its wait:
        a long read (analytics) is no outage. A known outage, or an error that is one, raises
        ``DatabaseUnavailable`` as ``run`` does, without marking the database down."""
        if self.down_since is not None:
            raise DatabaseUnavailable("the database is down")
        try:
            return await run_in_threadpool(call)
        except SQLAlchemyError as error:
            if not await self.outage(error, self.wait):
                raise
            raise DatabaseUnavailable(type(error).__name__) from None

    async def outage(self, error: SQLAlchemyError, limit: float) -> bool:
        """``is_outage``; and of an error a statement's bug shares with a table gone, the probe's
        word: answering, the database has its tables, and the statement is at fault (a 500 with
        its traceback, not the database marked down and up again for ever)."""
        if not is_outage(error):
            return False
        if not _may_be_the_statements(error):
            return True
        try:
            await asyncio.wait_for(asyncio.wrap_future(self._pool().submit(self._ping)), limit)
        except Exception:  # any failure of the probe: the database's state
            return True
        return False

    def mark_down(self, reason: str) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            if not self._writing_out:  # down still, not again: ``_written_out`` says nothing
                self._metrics.database_up.set(0)
                log.error("database unavailable (%s): hook calls are answered without it until it answers", reason)
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        """Ask the database every second, one question at a time, until it answers and takes
        what was held (should that fail, it is down still, and this goes on asking)."""
        while (since := self.down_since) is not None:
            await asyncio.sleep(RETRY_EVERY_SECONDS)
            if self._probe is None or self._probe.done():
                self._probe = self._pool().submit(self._ping)
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._probe)), RETRY_EVERY_SECONDS)
            except Exception:  # any failure of the probe means: not yet
                continue
            if await self._written_out(since):
                log.warning("database answers again, after %.1f s unavailable", time.monotonic() - since)
                self._metrics.database_up.set(1)

    async def _written_out(self, since: float) -> bool:
        """Whether what was held is written out, the calls let through meanwhile. If not, down
        as before, quietly: a database that answers the probe but refuses writes (a read-only
        standby, a full disk) said "answers again" and "unavailable" every second."""
        self.down_since, self._writing_out = None, True
        try:
            for callback in self._on_recovery:
                try:
                    await callback()
                except DatabaseUnavailable:
                    break  # refused again
                except Exception:
                    log.exception("writing out what was held while the database was unavailable failed")
        finally:
            self._writing_out = False
        if self.down_since is None:
            return True
        self.down_since = since
        return False

    def _pool(self) -> _Threads:
        """The database's own threads (made again if an app is started again after a shutdown)."""
        if self._threads is None:
            self._threads = _Threads(8)
        return self._threads

    async def close(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
        if self._threads is not None:
            self._threads.stop()
            self._threads = None


class _Threads:
    """A few daemon threads for database calls: unlike a ThreadPoolExecutor's, one stuck on a
    database gone silent never keeps the process from exiting."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        for number in range(count):
            threading.Thread(target=self._work, name=f"cds-database-{number}", daemon=True).start()

    def submit(self, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((future, call))
        return future

    def stop(self) -> None:
        for _ in range(self._count):
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, call = job
            if not future.set_running_or_notify_cancel():
                continue  # its caller gave up before it started
            try:
                future.set_result(call())
            except BaseException as error:
                future.set_exception(error)
