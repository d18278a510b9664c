"""What the routes depend on, built once per app: typed, and overridable in tests.

``Runtime`` holds everything a request may need (settings, clinical content, the store, the
clock, the authenticator, the outbound HTTP client); the routes ask for it, or for one of its
parts, through the ``Annotated`` aliases below, after the FastAPI template's ``SessionDep`` and
``CurrentUser``. ``VerifiedCaller`` is the checked client JWT: every route depends on it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Annotated, Any, TypeVar

import httpx
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

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
from cds_service.storage.records import Quiet
from cds_service.storage.replay import ReplayCache
from cds_service.storage.store import Store, open_store

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
    http: httpx.AsyncClient | None = None

    def today(self) -> date:
        return today(self.clock)

    async def on_hook_path(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """A store call made by every hook call. SQLite answers from a local file in tens of
        microseconds, less than a hop to the thread pool and back costs (about 0.8 ms on two
        cores), so it runs inline; PostgreSQL is across a network and goes to the pool."""
        if self.store.embedded:
            return call(*args, **kwargs)
        return await run_in_threadpool(call, *args, **kwargs)

    async def quiet(self, patient_id: str, shown_by: tuple[str, ...] = ()) -> Quiet:
        """What stored feedback silences for this patient (``Store.quiet``): the pipeline's quiet step."""
        return await self.on_hook_path(
            self.store.quiet, patient_id, snooze_days=self.knowledge.snooze_days, shown_by=shown_by
        )

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
    replay = ReplayCache(runtime.store)

    async def first_use(issuer: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        return await runtime.on_hook_path(replay.first_use, issuer, jti, expires_at=expires_at, now=now)

    def http() -> httpx.AsyncClient:
        assert runtime.http is not None, "the app is not running"
        return runtime.http

    runtime.authenticator = Authenticator(
        clients,
        first_use=first_use,
        http=http,
        clock=lambda: clock().timestamp(),
        leeway=settings.token_leeway_seconds,
        audience=Audience.configured(settings.public_url, host=settings.host, port=settings.port),
    )
    return runtime


def get_runtime(request: Request) -> Runtime:
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
