"""Card records (notices' too) and token ids, written behind the answers: up to 20 ms after the call,
every record queued meanwhile in one transaction, by one task per process.

A write per call (its own task, a hop to the database thread, a turn at SQLite's one writer)
piled up at 32 concurrent calls until uvicorn refused connections (issue 17). Anything that
reads cards back (feedback, order-sign's quiet read, analytics) has them written first
(``cards_written``). While the database is down, records and token ids are held
(``CardBuffer``, ``RecentTokens``) and written when it answers (``write_held``).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from cds_service.clock import Clock
from cds_service.errors import shown_url
from cds_service.observability import Metrics
from cds_service.storage.availability import DatabaseGate, DatabaseUnavailable
from cds_service.storage.held import HELD_CARDS, CardBuffer, PartlyHandled, RecentTokens, write_records
from cds_service.storage.records import CardRecord
from cds_service.storage.replay import ReplayCache
from cds_service.storage.store import Store

log = logging.getLogger(__name__)
# How long a record waits for others to share its transaction. A transaction costs as much as
# four small hook calls' card records (~0.7M instructions, and a hop to the database thread): at
# 1,000 calls a second one every 20 ms is ~1% of the CPU, one every 5 ms was ~5%. Nothing
# reads a record before it is written (``cards_written``); a crash loses at most these 20 ms.
WRITE_DELAY_SECONDS = 0.02


class Writer:
    def __init__(
        self, gate: DatabaseGate, store: Store, replay: ReplayCache, metrics: Metrics, clock: Clock, *, wait: float
    ) -> None:
        self._gate, self._store, self._replay, self._metrics, self._clock = gate, store, replay, metrics, clock
        # No caller waits on these writes, so a statement's time: under load the database thread
        # gets the CPU late, and the hook path's short wait marked the database down.
        self._wait = wait
        self.held_cards = CardBuffer(HELD_CARDS, metrics)
        self.recent_tokens = RecentTokens()
        self.queued: list[CardRecord] = []
        # Records queued and records written (or held) so far: what ``cards_written`` waits on.
        self._queued_count = self._handled_count = 0
        self._task: asyncio.Task[None] | None = None
        self._now = asyncio.Event()
        self._round_done = asyncio.Event()
        self._writing_held = asyncio.Lock()

    def queue(self, record: CardRecord) -> None:
        self.queued.append(record)
        self._queued_count += 1
        self.start()

    def start(self) -> None:
        """The writer task, if it is not running (it ends when nothing is left to write)."""
        if self._task is None or self._task.done():
            # Of this event loop (an app may be started again); no one waits on the old ones:
            # ``cards_written`` waits only while a task runs, and a task's last round set them.
            self._now, self._round_done = asyncio.Event(), asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._write_queued())

    async def _write_queued(self) -> None:
        while self.queued or self.recent_tokens.unwritten:
            if not self._now.is_set():  # calls close together share a transaction
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._now.wait(), WRITE_DELAY_SECONDS)
            self._now.clear()
            batch, self.queued = self.queued, []
            try:
                await self.write_held()  # records held earlier go first, and the token ids
                await write_records(self._write, batch, self._metrics)
            except DatabaseUnavailable as error:
                # Of this batch, those written or refused before the database went down are done.
                handled = error.handled if isinstance(error, PartlyHandled) else 0
                # And those queued meanwhile: this task ends, and no round would write them (a
                # record stood in the queue until the next call's, lost uncounted at shutdown).
                stranded, self.queued = self.queued, []
                self._handled_count += len(stranded)
                count = sum(record.size for record in batch[handled:])
                if count and not len(self.held_cards):  # once an outage, not every 20 ms round
                    log.warning("database unavailable (%s): card records held in memory", error)
                for record in [*batch[handled:], *stranded]:
                    self.held_cards.hold(record)
                return  # the gate's recovery writes what is held (``write_held``)
            finally:
                self._handled_count += len(batch)
                done, self._round_done = self._round_done, asyncio.Event()
                done.set()

    async def cards_written(self) -> None:
        """Every card record queued before this call written (or held, and then written here),
        at once; raises ``DatabaseUnavailable`` if the database is down.

        It waits for the rounds that write those records, not for the writer task to end: under
        steady load the task never ends, and feedback, analytics and order-sign calls waited
        until the load stopped (6 s under `make bench`'s load, issue 17)."""
        target = self._queued_count
        while self._handled_count < target and self._task is not None and not self._task.done():
            self._now.set()
            await self._round_done.wait()
        await self.write_held()

    async def write_held(self) -> None:
        """Write out what was held while the database was down (on its recovery, and before
        anything that reads cards back); raises ``DatabaseUnavailable`` if it is down again."""
        if not len(self.held_cards) and not self.recent_tokens.unwritten:
            return
        async with self._writing_held:  # the recovery and a feedback call may both get here
            if len(self.held_cards):
                await self.held_cards.drain(self._write)
            # The ids in hand, once: those that arrive meanwhile go with the writer's next round.
            # Looping until none were left kept the writer here under steady authenticated load,
            # a transaction every ~10 ids and the card records waiting (issue 17).
            if self.recent_tokens.unwritten:
                tokens = list(self.recent_tokens.unwritten)
                await self._write_tokens(tokens)
                del self.recent_tokens.unwritten[: len(tokens)]

    async def _write_tokens(self, tokens: list[tuple[str, str, datetime]]) -> None:
        """``tokens`` in one transaction; a batch the database refuses (a statement error, not an
        outage) is written again one id at a time, and an id refused alone is dropped: kept, it
        failed every later round, the card records' with it, and ended the writer."""
        try:
            await self._gate.run(self._replay.record, tokens, now=self._clock(), wait=self._wait, threaded=True)
        except DatabaseUnavailable:
            raise
        except SQLAlchemyError as error:
            if len(tokens) > 1:
                for token in tokens:
                    await self._write_tokens([token])
                return
            log.error(
                "a token id of issuer %s refused by the database (%s): not stored; this process still "
                "refuses it until it expires, another process or a restart would not",
                shown_url(tokens[0][0]),
                type(error).__name__,
            )

    async def _write(self, records: list[CardRecord]) -> None:
        # In a thread even on SQLite: another process's lock on the file must not stall the loop.
        await self._gate.run(self._store.record_issued, records, wait=self._wait, threaded=True)
