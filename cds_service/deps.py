"""What the routes depend on, built once per app: typed, and overridable in tests.

``Runtime`` holds everything a request may need (settings, clinical content, the store, the
clock, the authenticator, the outbound HTTP client); the routes ask for it, or for one of its
parts, through the ``Annotated`` aliases below, after the FastAPI template's ``SessionDep`` and
``CurrentUser``. ``VerifiedCaller`` is the checked client JWT: every route depends on it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Annotated, Any, TypeVar

import httpx
from fastapi import Depends, Request

from cds_service.clock import Clock, today
from cds_service.observability import Metrics
from cds_service.pipeline.evaluate import FhirAccess
from cds_service.pipeline.knowledge import Knowledge
from cds_service.pipeline.prefetch import FhirClient, Unfetchable
from cds_service.protocol.request import HookRequest
from cds_service.security.allowlist import ServerAllowList
from cds_service.security.audience import Audience
from cds_service.security.auth import Authenticator
from cds_service.security.clients import TrustedClient, TrustedClientsError, load_trusted_clients
from cds_service.settings import Settings
from cds_service.storage.availability import (
    HELD_CARDS,
    OUTAGES,
    CardBuffer,
    DatabaseGate,
    DatabaseUnavailable,
    RecentTokens,
    write_records,
)
from cds_service.storage.records import CardRecord, IssuedCard, Quiet
from cds_service.storage.replay import ReplayCache
from cds_service.storage.store import Store, open_store

log = logging.getLogger(__name__)
T = TypeVar("T")
# How long an issued-card record waits for others to share its transaction (~80 µs and a hop).
WRITE_DELAY_SECONDS = 0.005


@dataclass
class Runtime:
    settings: Settings
    knowledge: Knowledge
    store: Store
    clock: Clock
    new_uuid: Callable[[], str]
    metrics: Metrics = field(default_factory=Metrics)
    authenticator: Authenticator | None = None
    # Set while the app runs (its lifespan): one connection pool for every outbound call.
    http: httpx.AsyncClient | None = None
    # The database calls of the request paths, bounded in time, and what is held while it is down.
    storage: DatabaseGate = field(init=False)
    held_cards: CardBuffer = field(init=False)
    recent_tokens: RecentTokens = field(default_factory=RecentTokens)
    # Card records of answered hook calls, not yet written (``record_issued``), and their writer.
    queued_cards: list[CardRecord] = field(default_factory=list)
    _card_writer: asyncio.Task[None] | None = None
    _write_now: asyncio.Event = field(default_factory=asyncio.Event)
    _writing_held: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.storage = DatabaseGate(
            self.store.ping,
            wait=self.settings.database_wait_seconds,
            embedded=self.store.embedded,
            metrics=self.metrics,
        )
        self.held_cards = CardBuffer(HELD_CARDS, self.metrics)
        self.storage.on_recovery(self.write_held)

    def today(self) -> date:
        return today(self.clock)

    async def on_hook_path(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """A store call made by every hook call, within ``CDS_DATABASE_WAIT_SECONDS`` (``DatabaseGate``);
        raises ``DatabaseUnavailable`` rather than wait longer."""
        return await self.storage.run(call, *args, **kwargs)

    async def quiet(self, patient_id: str, shown_by: tuple[str, ...] = ()) -> Quiet:
        """What stored feedback silences for this patient (``Store.quiet``): the pipeline's quiet step.
        Without the database, nothing: the cards are answered, snoozes and the order-sign
        de-duplication not applied (said in the log and ``cds_storage_skipped_total``)."""
        try:
            if shown_by:  # the cards those services showed, written first
                await self.cards_written()
            return await self.on_hook_path(
                self.store.quiet, patient_id, snooze_days=self.knowledge.snooze_days, shown_by=shown_by
            )
        except DatabaseUnavailable as error:
            log.warning("database unavailable (%s): snoozes and earlier cards not read for this call", error)
            self.metrics.storage_skipped.labels("quiet").inc()
            return Quiet()

    def record_issued(
        self, *, service_id: str, hook_instance: str, patient_id: str, cards: Sequence[IssuedCard]
    ) -> None:
        """Queue the record of the cards a hook call issued, for the writer (``_write_queued``): a
        write per call (a task, a thread hop, a turn at SQLite's one writer) piled up at 32
        concurrent calls until uvicorn refused connections (issue 17)."""
        self.queued_cards.append(CardRecord(service_id, hook_instance, patient_id, tuple(cards), self.clock()))
        self._start_writer()

    def _start_writer(self) -> None:
        if self._card_writer is None or self._card_writer.done():
            self._write_now = asyncio.Event()  # of this event loop (an app may be started again)
            self._card_writer = asyncio.get_running_loop().create_task(self._write_queued())

    async def _write_queued(self) -> None:
        """Card records and token ids, written a few milliseconds after they were queued; while
        the database is down, held (the recovery writes them: ``DatabaseGate.on_recovery``)."""
        while self.queued_cards or self.recent_tokens.unwritten:
            if not self._write_now.is_set():  # calls close together share a transaction
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._write_now.wait(), WRITE_DELAY_SECONDS)
            self._write_now.clear()
            batch, self.queued_cards = self.queued_cards, []
            try:
                await self.write_held()  # records held earlier go first, and the token ids
                await write_records(self._write, batch, self.metrics)
            except DatabaseUnavailable as error:
                count = sum(len(record.cards) for record in batch)
                if count:
                    log.warning("database unavailable (%s): %d card record(s) held in memory", error, count)
                for record in batch:
                    self.held_cards.hold(record)
                return

    async def cards_written(self) -> None:
        """Every card record written, queued or held, at once (before anything reads cards back:
        feedback on a card, order-sign what order-select showed, analytics); raises
        ``DatabaseUnavailable`` if the database is down."""
        if self._card_writer is not None and not self._card_writer.done():
            self._write_now.set()
            await asyncio.shield(self._card_writer)
        await self.write_held()

    async def write_held(self) -> None:
        """Write out what was held while the database was down (on its recovery, and before
        anything that reads cards back); raises ``DatabaseUnavailable`` if it is down again."""
        if not len(self.held_cards) and not self.recent_tokens.unwritten:
            return
        async with self._writing_held:  # the recovery and a feedback call may both get here
            if len(self.held_cards):
                await self.held_cards.drain(self._write)
            await self._write_tokens()

    async def _write_tokens(self) -> None:
        while self.recent_tokens.unwritten:
            batch = list(self.recent_tokens.unwritten)
            await self.storage.run(self.replay.record, batch, now=self.clock(), threaded=True)
            del self.recent_tokens.unwritten[: len(batch)]

    async def _write(self, records: list[CardRecord]) -> None:
        # In a thread even on SQLite: a write can wait for the file's lock (another process's),
        # and the event loop must not wait with it.
        await self.storage.run(self.store.record_issued, records, threaded=True)

    @cached_property
    def replay(self) -> ReplayCache:
        return ReplayCache(self.store)

    async def first_use(self, issuer: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """The replay check of a client token: in the database, shared by every process; while it
        is down, in this process's memory (``RecentTokens``), written to the database later.

        On SQLite, one process serves the file (``Store.claim``): its memory, which starts with
        the unexpired ids stored before, is the whole truth, and ids are written a few ms later
        with the card records (a transaction and a hop to the database thread per call cost a
        third of an authenticated small call)."""
        if self.recent_tokens.replayed(issuer, jti, now):
            return False
        if self.store.embedded and self._tokens_loaded(now):
            fresh = self.recent_tokens.first_use(issuer, jti, expires_at=expires_at, now=now)
            self._start_writer()
            return fresh
        try:
            return await self.storage.run(
                self.replay.first_use, issuer, jti, expires_at=expires_at, now=now, threaded=True
            )
        except DatabaseUnavailable as error:
            log.warning("database unavailable (%s): token replay checked by this process only", error)
            self.metrics.storage_skipped.labels("token-replay").inc()
            return self.recent_tokens.first_use(issuer, jti, expires_at=expires_at, now=now)

    def _tokens_loaded(self, now: datetime) -> bool:
        """The unexpired token ids stored before this process started, in its memory (once)."""
        if not self.recent_tokens.loaded:
            try:
                self.recent_tokens.load(self.replay.unexpired(now))
            except OUTAGES as error:  # checked in the database, as on PostgreSQL, until it answers
                log.warning("stored token ids not read (%s)", type(error).__name__)
        return self.recent_tokens.loaded

    async def close(self) -> None:
        """At shutdown: write what is held if the database answers; count the rest lost."""
        with suppress(DatabaseUnavailable):
            await self.cards_written()
        if len(self.held_cards):
            log.error("shutting down with %d card record(s) not written: lost", len(self.held_cards))
            self.metrics.card_records_lost.inc(len(self.held_cards))
        await self.storage.close()

    @cached_property
    def open_servers(self) -> ServerAllowList:
        """With authentication off no caller is known, so no caller's list applies: the configured one."""
        return ServerAllowList(self.settings.fhir_servers)

    def fhir_access(self, caller: TrustedClient | None) -> FhirAccess:
        """The FHIR servers this caller may send us to; with authentication off, the configured ones."""
        servers = caller.servers if caller else self.open_servers

        def client(request: HookRequest) -> FhirClient | Unfetchable:
            refusal = servers.refusal(request.fhir_server or "")
            if refusal:  # logged by prefetch for each key it leaves unfetched, if any
                return Unfetchable(refusal)
            assert self.http is not None, "the app is not running"
            return FhirClient(
                self.http,
                request.fhir_server or "",
                request.access_token,
                max_pages=self.settings.fhir_max_pages,
                max_bytes=self.settings.max_body_bytes,
                on_failure=lambda key: self.metrics.fhir_errors.labels(key).inc(),
            )

        return client


def build_runtime(
    settings: Settings, knowledge: Knowledge, *, clock: Clock, new_uuid: Callable[[], str] | None = None
) -> Runtime:
    """Open the store and set up authentication; raises ``TrustedClientsError`` when it is
    required but no client is trusted."""
    runtime = Runtime(
        settings=settings,
        knowledge=knowledge,
        store=open_store(settings, clock=clock),
        clock=clock,
        new_uuid=new_uuid or (lambda: str(uuid.uuid4())),
    )
    if settings.auth_mode == "off":
        return runtime
    clients = load_trusted_clients(
        settings.trusted_clients_file, trust_sandbox=settings.trust_sandbox, sandbox_fhir_servers=settings.fhir_servers
    )
    if not clients:
        raise TrustedClientsError(
            "CDS_AUTH_MODE is required but no client is trusted: set CDS_TRUSTED_CLIENTS_FILE "
            "(or, on a test deployment, CDS_TRUST_SANDBOX=true), or CDS_AUTH_MODE=off on a developer's machine"
        )

    def http() -> httpx.AsyncClient:
        assert runtime.http is not None, "the app is not running"
        return runtime.http

    runtime.authenticator = Authenticator(
        clients,
        first_use=runtime.first_use,
        http=http,
        clock=lambda: clock().timestamp(),
        leeway=settings.token_leeway_seconds,
        audience=Audience.configured(settings.public_url, host=settings.host, port=settings.port),
    )
    return runtime


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop on every call.
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def verified_caller(request: Request, runtime: RuntimeDep) -> TrustedClient | None:
    """The authenticated client (None with authentication off); every route depends on it.

    Only the path comes from the request: the scheme and host a token's ``aud`` must name are
    the configured public URLs (``security/audience.py``), never ``Host`` or ``X-Forwarded-*``."""
    if runtime.authenticator is None:
        return None
    return await runtime.authenticator.authenticate(request.headers.get("authorization"), request.url.path)


VerifiedCaller = Annotated[TrustedClient | None, Depends(verified_caller)]
