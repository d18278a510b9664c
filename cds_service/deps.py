"""What the routes depend on, built once per app: typed, and overridable in tests.

``Runtime`` holds everything a request may need (settings, clinical content, the store, the
clock, the authenticator, the outbound HTTP client); the routes ask for it, or for one of its
parts, through the ``Annotated`` aliases below, after the FastAPI template's ``SessionDep`` and
``CurrentUser``. ``VerifiedCaller`` is the checked client JWT: every route depends on it (the
hook route, a plain Starlette one, calls ``verified_caller`` itself).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property, partial
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError

from cds_service.clock import Clock, today
from cds_service.errors import StorageUnavailable
from cds_service.observability import Metrics
from cds_service.pipeline.evaluate import FhirAccess, QuietFor
from cds_service.pipeline.fhir_client import FhirClient, Unfetchable
from cds_service.pipeline.knowledge import Knowledge
from cds_service.protocol.request import HookRequest
from cds_service.security.allowlist import ServerAllowList
from cds_service.security.audience import Audience
from cds_service.security.auth import Authenticator
from cds_service.security.clients import TrustedClient, required_clients
from cds_service.security.outbound import Outbound
from cds_service.settings import Settings
from cds_service.storage.availability import DatabaseGate, DatabaseUnavailable, is_outage
from cds_service.storage.records import CardRecord, IssuedCard, IssuedNotice, Owner, Quiet
from cds_service.storage.replay import ReplayCache
from cds_service.storage.store import Store, open_store
from cds_service.storage.writer import Writer

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    http: Outbound | None = None
    # The database calls of the request paths, bounded in time; what is written behind the answers.
    storage: DatabaseGate = field(init=False)
    writer: Writer = field(init=False)

    def __post_init__(self) -> None:
        self.storage = DatabaseGate(
            self.store.ping,
            wait=self.settings.database_wait_seconds,
            embedded=self.store.embedded,
            metrics=self.metrics,
        )
        self.writer = Writer(
            self.storage,
            self.store,
            self.replay,
            self.metrics,
            self.clock,
            wait=self.settings.database_statement_timeout_seconds,
        )
        self.storage.on_recovery(self.writer.write_held)

    def today(self) -> date:
        return today(self.clock, self.settings.zone)

    def quiet_for(self, caller: TrustedClient | None) -> QuietFor:
        """The pipeline's quiet step for this caller: the cards issued to it count, no other
        client's (a patient id is one EHR's)."""
        return partial(self.quiet, owner=Owner.of(caller))

    async def quiet(self, patient_id: str, shown_by: tuple[str, ...] = (), *, owner: Owner | None = None) -> Quiet:
        """What stored feedback silences for this patient (``Store.quiet``): the pipeline's quiet step.
        Without the database, nothing: the cards are answered, snoozes and the order-sign
        de-duplication not applied (said in the log and ``cds_storage_skipped_total``)."""
        try:
            if shown_by:  # the cards those services showed, written first
                await self.cards_written()
            if (kept := self.store.kept_quiet(patient_id, shown_by=shown_by, owner=owner)) is not None:
                self.metrics.quiet_answer("kept").inc()
                return kept
            quiet = await self.storage.run(
                self.store.quiet, patient_id, snooze_days=self.knowledge.snooze_days, shown_by=shown_by, owner=owner
            )
            self.metrics.quiet_answer("read").inc()
            return quiet
        except DatabaseUnavailable as error:
            log.warning("database unavailable (%s): snoozes and earlier cards not read for this call", error)
            self.metrics.storage_skipped.labels("quiet").inc()
            return Quiet()

    def record_issued(
        self,
        *,
        service_id: str,
        hook_instance: str,
        patient_id: str,
        cards: Sequence[IssuedCard],
        notices: Sequence[IssuedNotice] = (),
    ) -> None:
        """Queue the record of the cards and notices a hook call issued (``storage.writer``): never
        written on the call's path. ``hook_instance`` as the log says it (``observability.loggable``):
        a client's free text there may name the patient."""
        record = CardRecord(service_id, hook_instance, patient_id, tuple(cards), self.clock(), tuple(notices))
        self.writer.queue(record)

    async def cards_written(self) -> None:
        """Before anything reads cards back (feedback on a card, order-sign what order-select
        showed, analytics): every card record written; raises ``DatabaseUnavailable``."""
        await self.writer.cards_written()

    async def from_database(
        self,
        call: Callable[[], T],
        *,
        unavailable: str,
        cards_first: bool = True,
        apart: bool = False,
        wait: float | None = None,
    ) -> T:
        """A route's call to the database, its outage handling written once: out of reach, a
        ``StorageUnavailable`` (503, Retry-After) saying ``unavailable``, what the client is to do.
        ``cards_first``: every card record written before (what reads cards back); ``apart``: a
        long read, not the gate's (``DatabaseGate.run_apart``); ``wait``: ``DatabaseGate.run``'s."""
        try:
            if cards_first:
                await self.cards_written()
            if apart:
                return await self.storage.run_apart(call)
            return await self.storage.run(call, wait=wait, threaded=True)
        except DatabaseUnavailable as error:
            log.warning("503, the database is unavailable (%s): %s", error, unavailable)
            raise StorageUnavailable(unavailable, reason=str(error)) from None

    @cached_property
    def replay(self) -> ReplayCache:
        return ReplayCache(self.store)

    async def first_use(self, issuer: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """The replay check of a client token: in the database, shared by every process; while it
        is down, in this process's memory (``RecentTokens``), written to the database later.

        On SQLite, one process serves the file (``Store.claim``): its memory, which starts with
        the unexpired ids stored before, is the whole truth, and ids are written up to 20 ms later
        with the card records (a transaction and a hop to the database thread per call cost a
        third of an authenticated small call)."""
        if self.writer.recent_tokens.replayed(issuer, jti, now):
            return False
        # A memory full of unexpired ids (over 100,000: some 330 calls a second for 5 minutes)
        # checks in the database, which holds them all, rather than refuse the caller.
        if self.store.embedded and self._tokens_loaded(now) and self.writer.recent_tokens.has_room(now):
            fresh = self.writer.recent_tokens.first_use(issuer, jti, expires_at=expires_at, now=now)
            self.writer.start()
            return fresh
        try:
            return await self.storage.run(
                self.replay.first_use, issuer, jti, expires_at=expires_at, now=now, threaded=True
            )
        except DatabaseUnavailable as error:
            log.warning("database unavailable (%s): token replay checked by this process only", error)
            self.metrics.storage_skipped.labels("token-replay").inc()
            return self.writer.recent_tokens.first_use(issuer, jti, expires_at=expires_at, now=now)

    def _tokens_loaded(self, now: datetime) -> bool:
        """The unexpired token ids stored before this process started, in its memory (once)."""
        if not self.writer.recent_tokens.loaded:
            try:
                self.writer.recent_tokens.load(self.replay.unexpired(now))
            except SQLAlchemyError as error:  # checked in the database, as on PostgreSQL, until it answers
                if not is_outage(error):
                    raise
                log.warning("stored token ids not read (%s)", type(error).__name__)
        return self.writer.recent_tokens.loaded

    async def close(self) -> None:
        """At shutdown: write what is held if the database answers; count the rest lost; let go
        of the database's connections."""
        try:
            with suppress(DatabaseUnavailable):
                await self.cards_written()
            if len(self.writer.held_cards):
                log.error("shutting down with %d card record(s) not written: lost", len(self.writer.held_cards))
                self.metrics.card_records_lost.inc(len(self.writer.held_cards))
            await self.storage.close()
        finally:
            await asyncio.to_thread(self.store.stop_listening)
            await asyncio.to_thread(self.store.engine.dispose)

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
    settings: Settings,
    knowledge: Knowledge,
    *,
    clock: Clock,
    new_uuid: Callable[[], str] | None = None,
    serving: bool = False,
) -> Runtime:
    """Set up authentication, then open the store; raises ``TrustedClientsError`` when it is
    required but unusable. Checked before the store opens: a start refused made the data
    directory, the database and a patient-id key first, and an operator who then set
    ``CDS_PATIENT_ID_KEY`` was refused again, for the key that refused start had made."""
    clients: dict[str, TrustedClient] = {}
    if settings.auth_mode != "off":
        clients = required_clients(
            settings.trusted_clients_file,
            trust_sandbox=settings.trust_sandbox,
            sandbox_fhir_servers=settings.fhir_servers,
        )
    audience = Audience.configured(settings.public_url, host=settings.host, port=settings.port) if clients else None
    runtime = Runtime(
        settings=settings,
        knowledge=knowledge,
        store=open_store(settings, clock=clock, serving=serving),
        clock=clock,
        new_uuid=new_uuid or (lambda: str(uuid.uuid4())),
    )
    if audience is None:  # authentication off
        return runtime

    def http() -> Outbound:
        assert runtime.http is not None, "the app is not running"
        return runtime.http

    runtime.authenticator = Authenticator(
        clients,
        first_use=runtime.first_use,
        http=http,
        clock=lambda: clock().timestamp(),
        leeway=settings.token_leeway_seconds,
        audience=audience,
    )
    return runtime


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop on every call.
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def verified_caller(request: Request, runtime: RuntimeDep) -> TrustedClient | None:
    """The authenticated client (None with authentication off); every route depends on it.

    Only the path comes from the request: the scheme and host a token's ``aud`` must name are
    the configured public URLs (``security/audience.py``), never ``Host`` or ``X-Forwarded-*``."""
    if runtime.authenticator is None:
        return None
    # ``request.url.path``, escaped as Starlette escapes it, without building the whole URL (10 µs).
    path = request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    return await runtime.authenticator.authenticate(request.headers.get("authorization"), path)


VerifiedCaller = Annotated[TrustedClient | None, Depends(verified_caller)]
