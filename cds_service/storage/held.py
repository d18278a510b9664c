"""What the service holds in memory while the database is down, to write when it answers:
the records of the cards issued meanwhile (``CardBuffer``, bounded; the oldest dropped and
counted lost beyond it) and the client token ids seen meanwhile (``RecentTokens``, so this
process still refuses a replayed token, and every process does once they are written).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from cds_service.observability import Metrics, loggable
from cds_service.storage.availability import DatabaseUnavailable
from cds_service.storage.records import CardRecord

log = logging.getLogger(__name__)
# Issued-card (and notice) records held while the database is down (a few MB): beyond, the oldest are lost.
HELD_CARDS = 10_000


class PartlyHandled(DatabaseUnavailable):
    """The database went down partway through a batch written one record at a time: its first
    ``handled`` records were written (``written`` cards) or refused and counted lost; the rest
    are to be held. Held whole, the refused ones were counted lost again on the next try."""

    def __init__(self, reason: str, *, handled: int, written: int) -> None:
        super().__init__(reason)
        self.handled, self.written = handled, written


class CardBuffer:
    """Card records the database could not take yet, oldest first, at most ``limit`` cards."""

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self._limit = limit
        self._metrics = metrics
        self._pending: deque[CardRecord] = deque()
        self._cards = 0
        self._draining = asyncio.Lock()
        self._dropping = False  # since the buffer was last emptied

    def __len__(self) -> int:
        return self._cards

    def hold(self, record: CardRecord) -> None:
        self._pending.append(record)
        self._cards += record.size
        while self._cards > self._limit:
            dropped = self._pending.popleft()
            self._cards -= dropped.size
            self._metrics.card_records_lost.inc(dropped.size)
            if not self._dropping:  # then every call's would be: counted in the metric alone
                log.error("card buffer full (%d cards): the oldest records are lost from now on", self._limit)
            self._dropping = True
        self._metrics.card_records_pending.set(self._cards)

    async def drain(self, write: Callable[[list[CardRecord]], Awaitable[None]]) -> int:
        """Write the held records, in one batch; stops (keeping them) when the database is down again."""
        written = 0
        async with self._draining:
            while self._pending:
                batch = list(self._pending)
                try:
                    late = await write_records(write, batch, self._metrics)
                except PartlyHandled as partly:  # what it handled let go; the caller's batch is not this
                    self._settle(batch[: partly.handled], partly.written)
                    raise DatabaseUnavailable(str(partly)) from partly
                self._settle(batch, late)
                written += late
            self._dropping = False
        if written:
            log.warning("%d card record(s) held while the database was unavailable are written", written)
        return written

    def _settle(self, records: list[CardRecord], late: int) -> None:
        """``records``, the oldest held, are written (``late`` cards) or counted lost: let go."""
        self._metrics.card_records_late.inc(late)
        for record in records:
            self._pending.popleft()
            self._cards -= record.size
        self._metrics.card_records_pending.set(self._cards)


async def write_records(
    write: Callable[[list[CardRecord]], Awaitable[None]], records: list[CardRecord], metrics: Metrics
) -> int:
    """``records`` written in one transaction; the cards written. A batch the database refuses
    (a statement error, not an outage: ``DatabaseUnavailable`` goes up) is written again one
    record at a time, so that only the record it cannot take is lost (and counted), never held."""
    try:
        await write(records)
        return sum(record.size for record in records)
    except DatabaseUnavailable:
        raise
    except SQLAlchemyError as error:
        if len(records) > 1:
            written = 0
            for handled, record in enumerate(records):
                try:
                    written += await write_records(write, [record], metrics)
                except DatabaseUnavailable as down:
                    raise PartlyHandled(str(down), handled=handled, written=written) from down
            return written
        metrics.card_records_lost.inc(records[0].size)
        hook_call = loggable(records[0].hook_instance)
        log.error("card records of hook call %s refused (%s): lost", hook_call, type(error).__name__)
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
