"""Logs and metrics an operator can run the service on, without patient data in either.

Logs are one JSON object per line, each line of a hook call carrying its ``hookInstance`` (a
context variable set as soon as the body is read), so one call can be followed through
prefetch, rules and storage, and every line its process id, so that the lines of ``--workers``
processes, interleaved on one standard error, can be told apart. Metrics are Prometheus
counters and histograms labelled only by service, rule, status and outcome: never by patient,
user or order.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service.tracebacks import AsyncioSays, SafeExceptions, tell_uncaught

# The hookInstance of the call being handled, on every log line it produces (``loggable``).
hook_instance: ContextVar[str | None] = ContextVar("hook_instance", default=None)
# A UUID, as CDS Hooks says a hookInstance is (hyphens optional, "urn:uuid:" allowed).
_UUID = re.compile(r"(?:urn:uuid:)?[0-9a-fA-F]{8}(?:-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}")
# What a hook call answered ("2 card(s) [rule ids]"): said on its access line, the one line a
# call logs at INFO (a line costs ~30 µs; the rest of a call's story is at DEBUG).
call_outcome: ContextVar[str | None] = ContextVar("call_outcome", default=None)

# The record's own attributes, and uvicorn's ``color_message`` (its message again, for a terminal).
_RESERVED = {*vars(logging.makeLogRecord({})), "color_message"}
access = logging.getLogger("cds_service.access")
# The status counted for a request its client abandoned before it was read (nginx's 499).
CLIENT_CLOSED = 499


def loggable(hook_instance: str) -> str:
    """A hookInstance as the log may say it: a UUID as sent; anything else is the client's free
    text (one sent "PATIENT-<id> <name>"; a newline in it forged a line of the text log), named
    only as not a UUID."""
    return hook_instance if _UUID.fullmatch(hook_instance) else "(not a UUID)"


def in_call(body: object) -> str | None:
    """The hookInstance of a hook request's ``body`` as the log says it (``loggable``), set for
    every line logged after it in this context; None for a body without one. The HTTP route and
    ``cds-service evaluate`` alike: the offline run's lines carried none, its text lines ``[None]``."""
    if not (isinstance(body, dict) and isinstance(body.get("hookInstance"), str)):
        return None
    said = loggable(body["hookInstance"])
    hook_instance.set(said)
    return said


class _Context(logging.Filter):
    """Each line's hookInstance; ``outside`` on a line of no hook call (the text log's ``-``: the
    JSON line has no ``hookInstance`` key then, its formatter leaving out what is None)."""

    def __init__(self, outside: str | None) -> None:
        super().__init__()
        self._outside = outside

    def filter(self, record: logging.LogRecord) -> bool:
        said = hook_instance.get()
        record.hookInstance = self._outside if said is None else said
        return True


class JsonFormatter(SafeExceptions):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _RESERVED and v is not None})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:  # orjson: the stdlib's encoder is a tenth of a small hook call's one log line
            return orjson.dumps(line, default=str).decode()
        except TypeError:  # what orjson refuses (a lone surrogate, an integer over 64 bits)
            return json.dumps(line, ensure_ascii=False, default=str)


# Libraries whose INFO and DEBUG lines could carry what a request held: the FHIR client's (a
# fetch URL is ``Condition?patient=<id>``), SQLAlchemy's statements and their parameters (a
# clinician's comment), uvicorn's access log paths with their query strings. Their warnings and
# errors still come through.
QUIET_LIBRARIES = ("aiohttp", "sqlalchemy", "uvicorn.access")


def configure_logging(level: str, log_format: str) -> None:
    """The service's loggers at ``level``; every other library at INFO at most (never its DEBUG
    chatter), and those of ``QUIET_LIBRARIES`` at WARNING whatever ``level`` says."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Context(None if log_format == "json" else "-"))
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            SafeExceptions("%(asctime)s [%(process)d] %(levelname)s %(name)s [%(hookInstance)s]: %(message)s")
        )
    service = logging.getLogger("cds_service")
    service.setLevel(level.upper())  # an unknown level stops here, with its name
    # What no line prints is not gathered for each one (the logging HOWTO's "Optimization"): the
    # caller's file and line (a walk up the stack), thread and multiprocessing names. The process
    # id is printed (a getpid, 0.6 µs of a line's ~20 µs).
    logging._srcfile = None
    logging.logThreads = logging.logMultiprocessing = False
    logging.logProcesses = True
    logging.basicConfig(level=max(service.level, logging.INFO), handlers=[handler], force=True)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    if not any(isinstance(f, AsyncioSays) for f in logging.getLogger("asyncio").filters):
        logging.getLogger("asyncio").addFilter(AsyncioSays())
    tell_uncaught()


# Seconds: CDS Hooks asks for answers in about 500 ms; the buckets resolve well below that.
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's Prometheus instruments, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cds_requests", "HTTP requests answered, by route and status.", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "cds_hook_seconds",
            "Time to answer a hook call, by service.",
            ["service"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cards = Counter(
            "cds_cards", "Cards returned, by rule and indicator.", ["rule", "indicator"], registry=self.registry
        )
        self.fhir_errors = Counter(
            "cds_fhir_fetch_errors",
            "Prefetch keys whose fetch from fhirServer, or whose orders' Medications, failed or timed out, or "
            "whose later page failed or the deadline cut it off: once a call each, by key "
            "(draftOrders: drafts' Medications).",
            ["key"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "cds_feedback", "Feedback items received, by outcome.", ["outcome"], registry=self.registry
        )
        self.feedback_refused = Counter(
            "cds_feedback_refused",
            "Feedback items refused (the answer's refused list), by kind: database, contradiction, "
            "unoffered-suggestion.",
            ["kind"],
            registry=self.registry,
        )
        self._storage_metrics()
        # A metric's ``labels()`` checks and converts its values and takes a lock on every call;
        # the hook path's children are looked up once per label values (routes × statuses,
        # rules × indicators, services: a few dozen).
        self.answered = cache(self.requests.labels)
        self.card_shown = cache(self.cards.labels)
        self.hook_latency = cache(self.latency.labels)
        self.quiet_answer = cache(self.quiet_answers.labels)

    def _storage_metrics(self) -> None:
        """Degraded, not failed: what the service did without its database (storage.availability);
        what feedback silences, kept or read (storage.quiet, storage.changes)."""
        self.database_up = Gauge(
            "cds_database_up", "1 while the database answers, 0 while it is known to be down.", registry=self.registry
        )
        self.database_up.set(1)
        self.storage_skipped = Counter(
            "cds_storage_skipped",
            "Database reads and checks a hook call went without (database down), by operation.",
            ["operation"],
            registry=self.registry,
        )
        self.quiet_answers = Counter(
            "cds_quiet_answers",
            "What feedback silences for a hook call's patient: answers kept in memory, and read from the database.",
            ["source"],
            registry=self.registry,
        )
        self.quiet_answers_kept = Gauge(
            "cds_quiet_answers_kept",
            "1 while this process keeps what feedback silences between writes (on PostgreSQL: while it "
            "hears the other processes' writes), 0 while every hook call with a card reads it.",
            registry=self.registry,
        )
        self.card_records_pending = Gauge(
            "cds_card_records_pending",
            "Issued-card (and notice) records held in memory until the database answers.",
            registry=self.registry,
        )
        self.card_records_late = Counter(
            "cds_card_records_late",
            "Issued-card (and notice) records written after the database came back.",
            registry=self.registry,
        )
        self.card_records_lost = Counter(
            "cds_card_records_lost",
            "Issued-card (and notice) records never written (buffer full, or refused).",
            registry=self.registry,
        )


class CountRequests:
    """Counts every answer of the app inside the front door by route and status, and writes its
    access line; the front's own answers (``routes.front``: a path with an encoded separator, a
    CORS preflight) are neither counted nor logged here. Plain ASGI: Starlette's
    ``BaseHTTPMiddleware`` runs the app in a task of its own and costs a hook call about 0.3 ms."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hook_instance.set(None)
        call_outcome.set(None)
        status = 500  # what the client gets when the app raises
        started = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except ClientDisconnect:
            # The client went away (or the server front cut it) before its request was read: no
            # answer can reach it, and nothing went wrong here. Counted as nginx counts it.
            status = CLIENT_CLOSED
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.answered(route, str(status)).inc()
            # The access line: the route's template, never the path or query string it was called with.
            took = (time.perf_counter() - started) * 1000
            outcome = call_outcome.get()
            access.info("%s %s %d %.1f ms%s", scope["method"], route, status, took, f": {outcome}" if outcome else "")
