"""The HTTP adapter: the app is a short list of middleware and routers over one ``Runtime``.

    request → front (path check, CORS) → request counting → router (routes/) → VerifiedCaller → pipeline or store

Routes stay thin: they depend on the verified caller and the runtime (``deps``), read the
body, call ``pipeline.evaluate`` or the store, and answer. The hook route, the one hot path, is
a plain Starlette route that asks ``deps`` for both itself (``routes.hooks``). Errors become
OperationOutcome responses in one place (``routes.errors``).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from functools import partial

import orjson
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from uvicorn.main import STARTUP_FAILURE

from cds_service import __version__
from cds_service.clock import Clock, system_clock
from cds_service.deps import Runtime, build_runtime
from cds_service.errors import shown_url
from cds_service.observability import CountRequests, configure_logging
from cds_service.pipeline.knowledge import Knowledge, cautions, load_knowledge
from cds_service.routes import analytics, discovery, feedback, hooks, openapi, operations
from cds_service.routes.errors import install_error_handlers
from cds_service.routes.front import Front
from cds_service.security.outbound import open_client
from cds_service.settings import InvalidSettings, Settings, get_settings
from cds_service.storage.engine import CannotStartOnDatabase
from cds_service.tracebacks import uncaught

log = logging.getLogger(__name__)
_NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}
_GC_YOUNG_THRESHOLD = 10_000  # Python's default is 700; 50,000 held 13 MiB more for nothing faster


def create_app(
    settings: Settings | None = None,
    *,
    knowledge: Knowledge | None = None,
    clock: Clock = system_clock,
    new_uuid: Callable[[], str] | None = None,
    worker: bool = False,
    serving: bool = False,
) -> FastAPI:
    """The service app; raises ``TrustedClientsError`` when authentication is required but
    unusable, ``InvalidSettings`` for a file or setting it cannot use, and
    ``CannotStartOnDatabase`` when its database cannot be used (each told in one line by the CLI).

    ``clock`` is the service's one clock (``cds_service.clock``): rules, storage, analytics and
    token lifetimes all read it. ``worker``: the app of one of ``serve --workers``' processes,
    whose supervisor said the configuration's warnings (``say_configuration``): it says them only
    if its own differ. ``serving``: the app ``cds-service serve`` serves, which has its SQLite file
    alone, claimed before it is migrated (``StoreInUse`` if another process serves it)."""
    settings = settings or get_settings()
    knowledge = knowledge or load_knowledge(settings)
    runtime = build_runtime(settings, knowledge, clock=clock, new_uuid=new_uuid, serving=serving)
    app = FastAPI(
        title="Back spasm CDS service",
        version=__version__,
        description="CDS Hooks 2.0 service: guidance on muscle relaxant orders for back spasm.",
        lifespan=_lifespan(runtime, says_configuration=not worker),
        # FastAPI's own OpenTelemetry, which starts when the process has an SDK configured: its
        # spans carry query strings as sent and its logs exceptions' messages, both kept out of
        # this service's logs. Metrics are at /metrics, a call's story in the log by hookInstance.
        telemetry=_NO_TELEMETRY,
        redoc_url=None,  # /docs is the page of /openapi.json (integrating.md): one is enough
        # Swagger UI's OAuth2 sign-in page (/docs/oauth2-redirect): the service takes no OAuth2 flow.
        swagger_ui_oauth2_redirect_url=None,
        # A path with a trailing slash is a 404, not a redirect built from the Host header: a
        # client following a 307 to whatever host was named would re-post its patient's data.
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    app.add_middleware(CountRequests, metrics=runtime.metrics)
    # Only the configured browser origins (none by default): a web page elsewhere cannot read answers.
    # Outermost: a path with an encoded separator is refused before anything else (routes.front).
    app.add_middleware(
        Front,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        # Else hidden from the page: when to resend feedback (503), and why a call was refused (401).
        expose_headers=["Retry-After", "WWW-Authenticate"],
        # Chrome's Private Network Access (the hosted sandbox, a public page, calling a service on
        # localhost): only when configured, or any web page could reach a service on this machine.
        allow_private_network=settings.cors_private_network,
    )
    install_error_handlers(app)
    app.router.routes.append(hooks.HOOK_ROUTE)
    for module in (discovery, feedback, analytics, operations):
        app.include_router(module.router)
    openapi.install(app, auth_required=runtime.authenticator is not None)
    return app


async def _store_job(what: str, job: Callable[[], object]) -> None:
    """A store job off the event loop: a database error said in a line, a bug seen whole; the
    hourly loop goes on either way."""
    try:
        await run_in_threadpool(job)
    except SQLAlchemyError as error:
        log.error("%s failed: %s", what, type(error).__name__)
    except Exception:
        log.exception("%s failed", what)


# Where ``serve --workers``' supervising process leaves the digest of what it said at start-up,
# for its workers. Not CDS_: the settings read those (and refuse some they do not know).
SAID_DIGEST_VARIABLE = "CDSSERVICE_STARTUP_SAID"


def _configuration_said(runtime: Runtime) -> list[tuple[int, str]]:
    """What start-up says of the configuration, by level. The cautions are those ``cds-service
    rules`` lists: one source for both."""
    if runtime.authenticator is None:
        said = [
            (
                logging.WARNING,
                "AUTHENTICATION IS OFF (CDS_AUTH_MODE=off): any caller is answered. "
                "Use this on a developer's machine only; see docs/security.md.",
            )
        ]
    else:
        bases = ", ".join(f"{base}/cds-services…" for base in runtime.authenticator.audience.bases)
        issuers = ", ".join(map(shown_url, runtime.authenticator.issuers))  # a configured one may carry a password
        said = [
            (
                logging.INFO,
                f"client authentication required; trusted issuers: {issuers}; tokens must be addressed to {bases}",
            )
        ]
    return said + [(logging.WARNING, caution) for caution in cautions(runtime.knowledge, runtime.settings)]


def _digest(said: list[tuple[int, str]]) -> str:
    return hashlib.sha256(orjson.dumps(said)).hexdigest()


def say_configuration(runtime: Runtime) -> None:
    """What start-up warns of, once a service: by the app of one process as it starts, and by
    ``serve --workers``' supervising process before its workers start (each of N workers said
    every caution, N times: an operator's review)."""
    for level, message in _configuration_said(runtime):
        log.log(level, "%s", message)


def say_configuration_to_workers(runtime: Runtime) -> None:
    """The supervisor's ``say_configuration``, leaving its digest to the workers it starts (they
    inherit its environment, ``SAID_DIGEST_VARIABLE``): they say nothing of a configuration said."""
    say_configuration(runtime)
    os.environ[SAID_DIGEST_VARIABLE] = _digest(_configuration_said(runtime))


def _say_configuration_if_not_said(runtime: Runtime) -> None:
    """A worker's: uvicorn starts workers again after a death, and all on SIGHUP, each reading the
    configuration again. A file edited meanwhile (authentication off, the time zone removed)
    would run with no warning: said here when it differs from what the supervisor said."""
    said = _configuration_said(runtime)
    if _digest(said) == os.environ.get(SAID_DIGEST_VARIABLE):
        return
    log.warning("this worker's configuration is not the one said when the service started:")
    for level, message in said:
        log.log(level, "%s", message)


def _lifespan(runtime: Runtime, *, says_configuration: bool) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    settings = runtime.settings
    retention = timedelta(days=settings.retention_days)

    async def sweep() -> None:
        """Retention: cards and feedback older than CDS_RETENTION_DAYS go, at start-up and hourly."""
        await _store_job("retention sweep", partial(runtime.store.sweep, retention=retention))

    async def key_old_records() -> None:
        """What an older release stored as sent, keyed (``storage.keyed``): once an upgrade starts,
        and hourly for its processes still running. Not before the first request: the quiet read
        keys such records as it reads them, and a large table takes a while."""
        await _store_job("keying older card records", runtime.store.key_old_records)

    async def sweep_every_hour() -> None:
        await key_old_records()
        while True:
            await asyncio.sleep(3600)
            await sweep()
            await key_old_records()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if says_configuration:
            say_configuration(runtime)
        else:
            _say_configuration_if_not_said(runtime)
        await sweep()  # before the first request, so nothing past retention is ever served
        sweeper = asyncio.create_task(sweep_every_hour())
        runtime.store.listen(runtime.metrics.quiet_answers_kept.set)
        # What start-up loaded (FastAPI, the FHIR models, the terminology) lives as long as the
        # process: out of the collector's sight, a full collection takes 3 ms instead of 40.
        gc.freeze()
        # A call's objects are acyclic and freed when it ends, but a 500-entry body alone holds
        # ~4,000 containers at once: at the default 700 the collector ran five or six times in
        # each such call and found nothing (8% of its time). Cyclic garbage still goes, later.
        gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        try:
            async with open_client(settings.fhir_deadline_seconds, settings.outbound_proxy) as http:
                runtime.http = http
                yield
        finally:
            sweeper.cancel()
            await runtime.close()  # card records held while the database was down: written, or counted lost

    return lifespan


def app_from_environment() -> FastAPI:
    """The app of one worker process (``cds-service serve --workers N``): settings from the environment.

    A worker reads them again: one started after the config file was edited into error is told as
    ``cds-service`` tells it, in one line, not by multiprocessing's traceback."""
    try:
        settings = get_settings()
        configure_logging(settings.log_level, settings.log_format)
        return create_app(settings, worker=True)
    except InvalidSettings as error:
        print(f"cds-service: invalid configuration: {error}", file=sys.stderr)
        raise SystemExit(STARTUP_FAILURE) from None
    except CannotStartOnDatabase as error:  # its database out of reach when uvicorn starts it again
        print(f"cds-service: {error}", file=sys.stderr)
        raise SystemExit(STARTUP_FAILURE) from None
    except Exception:  # else multiprocessing prints it whole, past the log and its formatter
        uncaught.exception("The worker could not start")
        # uvicorn's code for a start that fails: the parent stops (serving.run says so by its own
        # exit code) rather than start another worker at once, which would fail the same way.
        raise SystemExit(STARTUP_FAILURE) from None
