"""Degrade, don't fail: the database calls of the request paths, bounded in time, and what the
service keeps in memory while the database is away.

A clinician waiting on an order must not wait on a database. Every call of a request path goes
through ``DatabaseGate.run``: on PostgreSQL in a small pool of threads of its own (a database
that hangs holds those threads, never the ones evaluation and the other routes use), for at most
``CDS_DATABASE_WAIT_SECONDS``. A timeout, or an error that means the database is unreachable
(not a bad statement), marks it down: from then on calls skip it at once, and one probe asks it
every second until it answers, when the ``on_recovery`` callbacks write out what was held.

What is held: the records of the cards issued meanwhile (``CardBuffer``, bounded; the oldest
dropped and counted lost beyond it) and the client token ids seen meanwhile (``RecentTokens``,
so this process still refuses a replayed token, and every process does once they are written).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cds_service.observability import Metrics
from cds_service.storage.records import CardRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors that say the database cannot be reached or cannot take the statement now (connection
# refused or lost, statement or pool timeout, SQLite's file locked or unwritable), not that the
# statement itself is wrong: only these mark the database down and are waited out.
OUTAGES = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
RETRY_EVERY_SECONDS = 1.0
# Issued-card records held while the database is down (a few MB): beyond, the oldest are lost.
HELD_CARDS = 10_000
# What a client told to come back (feedback answered 503) is asked to wait.
RETRY_AFTER_SECONDS = 5


class DatabaseUnavailable(Exception):
    """The database did not answer in time, failed as an unreachable one does, or is known down."""


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
        except OUTAGES as error:
            self.mark_down(type(error).__name__)
            raise DatabaseUnavailable(type(error).__name__) from error

    def mark_down(self, reason: str) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self._metrics.database_up.set(0)
            log.error("database unavailable (%s): hook calls are answered without it until it answers", reason)
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        """Ask the database every second, one question at a time, until it answers; then write
        out what was held (should that fail, it is down again, and this goes on asking)."""
        while self.down_since is not None:
            await asyncio.sleep(RETRY_EVERY_SECONDS)
            if self._probe is None or self._probe.done():
                self._probe = self._pool().submit(self._ping)
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._probe)), RETRY_EVERY_SECONDS)
            except Exception:  # any failure of the probe means: not yet
                continue
            log.warning("database answers again, after %.1f s unavailable", time.monotonic() - self.down_since)
            self.down_since = None
            self._metrics.database_up.set(1)
            for callback in self._on_recovery:
                try:
                    await callback()
                except DatabaseUnavailable:
                    break  # marked down again
                except Exception:
                    log.exception("writing out what was held while the database was unavailable failed")

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


class CardBuffer:
    """Card records the database could not take yet, oldest first, at most ``limit`` cards."""

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self._limit = limit
        self._metrics = metrics
        self._pending: deque[CardRecord] = deque()
        self._cards = 0
        self._draining = asyncio.Lock()

    def __len__(self) -> int:
        return self._cards

    def hold(self, record: CardRecord) -> None:
        self._pending.append(record)
        self._cards += len(record.cards)
        while self._cards > self._limit:
            dropped = self._pending.popleft()
            self._cards -= len(dropped.cards)
            self._metrics.card_records_lost.inc(len(dropped.cards))
            log.error("card buffer full (%d): the records of hook call %s are lost", self._limit, dropped.hook_instance)
        self._metrics.card_records_pending.set(self._cards)

    async def drain(self, write: Callable[[list[CardRecord]], Awaitable[None]]) -> int:
        """Write the held records, in one batch; stops (keeping them) when the database is down again."""
        written = 0
        async with self._draining:
            while self._pending:
                batch = list(self._pending)
                late = await write_records(write, batch, self._metrics)
                self._metrics.card_records_late.inc(late)
                written += late
                for record in batch:
                    self._pending.popleft()
                    self._cards -= len(record.cards)
                self._metrics.card_records_pending.set(self._cards)
        if written:
            log.warning("%d card record(s) held while the database was unavailable are written", written)
        return written


async def write_records(
    write: Callable[[list[CardRecord]], Awaitable[None]], records: list[CardRecord], metrics: Metrics
) -> int:
    """``records`` written in one transaction; the cards written. A batch the database refuses
    (a statement error, not an outage: ``DatabaseUnavailable`` goes up) is written again one
    record at a time, so that only the record it cannot take is lost (and counted), never held."""
    try:
        await write(records)
        return sum(len(record.cards) for record in records)
    except DatabaseUnavailable:
        raise
    except SQLAlchemyError as error:
        if len(records) > 1:
            return sum([await write_records(write, [record], metrics) for record in records])
        metrics.card_records_lost.inc(len(records[0].cards))
        log.error("card records of hook call %s refused (%s): lost", records[0].hook_instance, type(error).__name__)
        return 0


class RecentTokens:
    """Client token ids seen while the database was down: refused again by this process until
    they expire, and written to the database when it answers (then every process refuses them)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._seen: dict[tuple[str, str], datetime] = {}
        self.unwritten: list[tuple[str, str, datetime]] = []
        self.loaded = False  # holds every unexpired id stored before (SQLite: ``Runtime.first_use``)
        self._swept = datetime.min.replace(tzinfo=UTC)

    def load(self, stored: list[tuple[str, str, datetime]]) -> None:
        self._seen.update(((issuer, jti), expires) for issuer, jti, expires in stored)
        self.loaded = True

    def replayed(self, issuer: str, jti: str, now: datetime) -> bool:
        expires = self._seen.get((issuer, jti))
        return expires is not None and expires >= now

    def has_room(self, now: datetime) -> bool:
        """Room for another id, the expired ones dropped first (at most once a second: a sweep
        walks every id, and a memory full of unexpired ones would sweep on every call)."""
        if len(self._seen) >= self._limit and now - self._swept >= timedelta(seconds=1):
            self._seen = {key: expires for key, expires in self._seen.items() if expires >= now}
            self._swept = now
        return len(self._seen) < self._limit

    def first_use(self, issuer: str, jti: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record a token id in memory; False for a replay, or when the memory is full (refused
        rather than forgotten: a forgotten id could be replayed)."""
        if self.replayed(issuer, jti, now):
            return False
        if not self.has_room(now):
            log.error("%d unexpired token ids held in memory: token refused", self._limit)
            return False
        self._seen[(issuer, jti)] = expires_at
        self.unwritten.append((issuer, jti, expires_at))
        return True
