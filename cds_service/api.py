"""The HTTP adapter: routes, CORS, client authentication and the one place errors become responses.

Routes stay thin: they authenticate the caller, read the body, call ``evaluate`` or the
store, and answer. Every error body is a FHIR OperationOutcome naming the offending field.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

import httpx
import orjson
from fastapi import BackgroundTasks, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds_service import __version__, openapi
from cds_service.allowlist import ServerAllowList
from cds_service.analytics import analytics, parse_query
from cds_service.auth import Authenticator, TrustedClient, TrustedClientsError, load_trusted_clients
from cds_service.body import BodyLimits, read_json
from cds_service.clock import Clock, system_clock, today
from cds_service.errors import CdsError, Unauthorized, UnknownService, operation_outcome
from cds_service.evaluate import Knowledge, Quiet, evaluate, load_knowledge
from cds_service.feedback import parse_feedback
from cds_service.hook_request import HookRequest
from cds_service.observability import CountRequests, Metrics, configure_logging, hook_instance
from cds_service.prefetch import FhirClient, Unfetchable
from cds_service.report import html_report
from cds_service.services import SERVICES, ServiceDefinition
from cds_service.settings import Settings, get_settings
from cds_service.store import open_store

log = logging.getLogger(__name__)
T = TypeVar("T")


def _service(service_id: str) -> ServiceDefinition:
    try:
        return SERVICES[service_id]
    except KeyError:
        raise UnknownService(f"no CDS service with id {service_id!r}; see GET /cds-services") from None


def called_url(request: Request, *, trust_proxy_headers: bool) -> str:
    """The URL the client called, which its token's ``aud`` must name.

    Behind a reverse proxy the scheme and host the client used arrive in X-Forwarded-Proto
    and X-Forwarded-Host; they are honoured only when configured, or any client could set them.
    """
    scheme, netloc = request.url.scheme, request.url.netloc
    if trust_proxy_headers:
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
        scheme, netloc = proto or scheme, host or netloc
    return f"{scheme}://{netloc}{request.url.path}"


async def _caller(request: Request) -> TrustedClient | None:
    """The authenticated client (None with authentication off); every route depends on it."""
    return await request.app.state.authenticate(request)


Caller = Annotated[TrustedClient | None, Depends(_caller)]


def _error(status: int, message: str, issue_code: str, fields: tuple[str, ...] | list[str] = ()) -> JSONResponse:
    return JSONResponse(operation_outcome(message, issue_code=issue_code, fields=fields), status_code=status)


def create_app(
    settings: Settings | None = None,
    *,
    knowledge: Knowledge | None = None,
    clock: Clock = system_clock,
    new_uuid: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> FastAPI:
    """The service app; raises ``TrustedClientsError`` when authentication is required but unusable.

    ``clock`` is the service's one clock (``cds_service.clock``): rules, storage, analytics and
    token lifetimes all read it."""
    settings = settings or get_settings()
    knowledge = knowledge or load_knowledge(settings)
    store = open_store(settings, clock=clock)

    async def on_hook_path(call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """A store call made by every hook call. SQLite answers from a local file in tens of
        microseconds, less than a hop to the thread pool and back costs (about 0.8 ms on two
        cores), so it runs inline; PostgreSQL is across a network and goes to the pool."""
        if store.embedded:
            return call(*args, **kwargs)
        return await run_in_threadpool(call, *args, **kwargs)

    quiet_for = timedelta(minutes=settings.accepted_quiet_minutes)
    retention = timedelta(days=settings.retention_days)
    limits = BodyLimits(max_bytes=settings.max_body_bytes, max_entries=settings.max_entries)
    authenticator: Authenticator | None = None
    clients = load_trusted_clients(settings.trusted_clients_file, trust_sandbox=settings.trust_sandbox)
    if settings.auth_mode == "required":
        if not clients:
            raise TrustedClientsError(
                "CDS_AUTH_MODE is required but no client is trusted: set CDS_TRUSTED_CLIENTS_FILE "
                "(or, on a test deployment, CDS_TRUST_SANDBOX=true), or CDS_AUTH_MODE=off on a developer's machine"
            )

        async def first_use(issuer: str, jti: str, expires_at: datetime, now: datetime) -> bool:
            return await on_hook_path(store.first_use, issuer, jti, expires_at=expires_at, now=now)

        authenticator = Authenticator(
            clients,
            first_use=first_use,
            http=lambda: app.state.http,
            clock=lambda: clock().timestamp(),
            leeway=settings.token_leeway_seconds,
        )
    # With authentication off no caller is known, so no caller's list applies.
    open_servers = ServerAllowList(settings.fhir_servers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if authenticator is None:
            log.warning(
                "AUTHENTICATION IS OFF (CDS_AUTH_MODE=off): any caller is answered. "
                "Use this on a developer's machine only; see README, Security."
            )
        else:
            log.info("client authentication required; trusted issuers: %s", sorted(clients))
        await _sweep()  # before the first request, so nothing past retention is ever served
        sweeper = asyncio.create_task(_sweep_every_hour())
        # What start-up loaded (FastAPI, the FHIR models, the terminology) lives as long as the
        # process: out of the collector's sight, a full collection takes 3 ms instead of 40.
        gc.freeze()
        timeout = httpx.Timeout(settings.fhir_deadline_seconds)
        try:
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
                app.state.http = http
                yield
        finally:
            sweeper.cancel()

    async def _sweep() -> None:
        """Retention: cards and feedback older than CDS_RETENTION_DAYS go, at start-up and hourly."""
        try:
            await run_in_threadpool(store.sweep, retention=retention)
        except SQLAlchemyError as error:
            log.error("retention sweep failed: %s", type(error).__name__)

    async def _sweep_every_hour() -> None:
        while True:
            await asyncio.sleep(3600)
            await _sweep()

    app = FastAPI(
        title="Back spasm CDS service",
        version=__version__,
        description="CDS Hooks 2.0 service: guidance on muscle relaxant orders for back spasm.",
        lifespan=lifespan,
    )
    app.state.store = store
    metrics = Metrics()
    app.add_middleware(CountRequests, metrics=metrics)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        # Chrome's Private Network Access: the hosted sandbox (public) calling a service on localhost.
        allow_private_network=True,
    )

    @app.exception_handler(CdsError)
    async def _cds_error(request: Request, error: CdsError) -> JSONResponse:
        response = _error(error.status_code, error.message, error.issue_code, error.fields)
        if isinstance(error, Unauthorized):
            log.warning("401 for %s %s: %s", request.method, request.url.path, error.reason)
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        fields = [".".join(str(p) for p in e["loc"]) for e in error.errors()]
        return _error(
            400, "; ".join(f"{f}: {e['msg']}" for f, e in zip(fields, error.errors(), strict=True)), "invalid", fields
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = "not-found" if error.status_code == 404 else "not-supported"
        return _error(error.status_code, str(error.detail), code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, "internal error; the service log has the details", "exception")

    async def authenticate(request: Request) -> TrustedClient | None:
        if authenticator is None:
            return None
        url = called_url(request, trust_proxy_headers=settings.trust_proxy_headers)
        return await authenticator.authenticate(request.headers.get("authorization"), url)

    app.state.authenticate = authenticate

    def fhir_access(caller: TrustedClient | None) -> Callable[[HookRequest], FhirClient | Unfetchable]:
        servers = caller.servers if caller else open_servers

        def client(request: HookRequest) -> FhirClient | Unfetchable:
            refusal = servers.refusal(request.fhir_server or "")
            if refusal:  # logged by prefetch for each key it leaves unfetched, if any
                return Unfetchable(refusal)
            return FhirClient(
                app.state.http,
                request.fhir_server or "",
                request.access_token,
                max_pages=settings.fhir_max_pages,
                max_bytes=settings.max_body_bytes,
                on_failure=lambda key: metrics.fhir_errors.labels(key).inc(),
            )

        return client

    async def quiet(patient_id: str) -> Quiet:
        return await on_hook_path(store.quiet, patient_id, accepted_within=quiet_for, snooze_days=knowledge.snooze_days)

    @app.get("/cds-services", summary="CDS Hooks discovery")
    async def discovery(_: Caller) -> dict[str, Any]:
        services = []
        for key in sorted(SERVICES):
            rules = knowledge.rules_for(SERVICES[key].hook)
            if rules:
                services.append(SERVICES[key].discovery([knowledge.catalog.texts[r.id].title for r in rules]))
        return {"services": services}

    @app.post("/cds-services/{service_id}", summary="Call a CDS service")
    async def call_service(service_id: str, request: Request, background: BackgroundTasks, caller: Caller) -> Response:
        service = _service(service_id)
        started = time.perf_counter()
        body = await read_json(request, limits)
        if isinstance(body, dict) and isinstance(body.get("hookInstance"), str):
            hook_instance.set(body["hookInstance"][:200])
        result = await evaluate(
            service,
            body,
            knowledge=knowledge,
            today=today(clock),
            new_uuid=new_uuid,
            fhir=fhir_access(caller),
            deadline=settings.fhir_deadline_seconds,
            quiet=quiet,
        )
        log.info("hook %s: %d card(s) %s", service.id, len(result.cards), [c.rule_id for c in result.issued])
        for card in result.cards:
            metrics.cards.labels(card["source"]["topic"]["code"], card["indicator"]).inc()
        if result.issued:
            background.add_task(
                on_hook_path,
                store.record_issued,
                service_id=service.id,
                hook_instance=result.request.hookInstance,
                patient_id=result.context.patientId,
                cards=result.issued,
            )
        metrics.latency.labels(service.id).observe(time.perf_counter() - started)
        # Serialised here, not by FastAPI: its encoder walks every card again in Python.
        return Response(orjson.dumps(result.response()), media_type="application/json")

    @app.post("/cds-services/{service_id}/feedback", summary="Feedback on cards")
    async def receive_feedback(service_id: str, request: Request, _: Caller) -> dict[str, Any]:
        service = _service(service_id)
        items = parse_feedback(await read_json(request, limits)).feedback
        stored = await run_in_threadpool(store.record_feedback, service_id=service.id, items=items)
        log.info("feedback %s: %d item(s), %d new", service.id, len(items), stored)
        for item in items:
            metrics.feedback.labels(item.outcome).inc()
        return {"received": len(items), "stored": stored}

    @app.get("/analytics", summary="Card outcomes per rule and period")
    async def get_analytics(
        _: Caller,
        from_: Annotated[str | None, Query(alias="from", description="first day, YYYY-MM-DD")] = None,
        to: Annotated[str | None, Query(description="last day, YYYY-MM-DD (default today)")] = None,
        period: Annotated[str | None, Query(description="day, week (default) or month")] = None,
    ) -> dict[str, Any]:
        query = parse_query(from_, to, period, today(clock))
        return await run_in_threadpool(analytics, store, knowledge, query)

    @app.get("/analytics/report", summary="Card outcomes per rule, as a page for people", response_class=HTMLResponse)
    async def get_analytics_report(
        _: Caller,
        from_: Annotated[str | None, Query(alias="from")] = None,
        to: Annotated[str | None, Query()] = None,
        period: Annotated[str | None, Query()] = None,
    ) -> HTMLResponse:
        query = parse_query(from_, to, period, today(clock))
        return HTMLResponse(html_report(await run_in_threadpool(analytics, store, knowledge, query)))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers. Nothing else is checked, so a slow database never restarts it."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Readiness: the database answers and the clinical content is loaded (it is, or start-up failed)."""
        checks = {"terminology": f"{len(knowledge.terminology.products)} products, {len(knowledge.rules)} rules"}
        try:
            version = await run_in_threadpool(store.ping)
            checks["database"] = f"ok, schema version {version}"
        except SQLAlchemyError as error:
            log.error("readiness: database unavailable: %s", type(error).__name__)
            checks["database"] = f"unavailable ({type(error).__name__})"
            return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
        return JSONResponse({"status": "ready", "checks": checks})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    openapi.install(app, auth_required=authenticator is not None)
    return app


def app_from_environment() -> FastAPI:
    """The app of one worker process (``cds-service serve --workers N``): settings from the environment."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
