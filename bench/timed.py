"""``cds-service serve`` with each stage of a hook call timed where it runs: in the server, under
load (``bench/stages.py`` drives it with wrk).

``bench/breakdown.py`` calls each stage alone many times over, on a parsed body its caches and
the CPU's have long met: a floor, not what a call pays. Here the same service answers wrk, and
each stage's function (looked up by name at call time, so wrapped in place) adds its wall time
to a running total: the stages in the order a call meets them, the route and the whole app
around them (to its answer written, and to its end: the access line and the request metrics
come after the answer), the collector's pauses (``gc.callbacks``), and the card records' writes
(CPU time of the database thread). SIGUSR1 writes the totals to ``$BENCH_STAGES_OUT/<pid>.json``
and starts new ones; it is handled on the event loop, between calls' steps, so a stage is never
counted in part (a call waiting on a fetch or a thread when it comes is split across the two).
With ``BENCH_STOP_AFTER`` naming a stage (``STAGES``' keys) every hook call is answered
``{"cards": []}`` as soon as that stage is done: what the call costs up to there.
Nothing here is imported by the service.

    BENCH_STAGES_OUT=/tmp/stages python -m bench.timed serve --port 8000
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import json
import os
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from starlette.responses import Response
from starlette.routing import request_response

from cds_service import cli, serving
from cds_service.deps import Runtime
from cds_service.observability import access
from cds_service.pipeline import evaluate as pipeline
from cds_service.routes import hooks
from cds_service.storage.store import Store

TOTALS: defaultdict[str, float] = defaultdict(float)  # seconds, by stage
CALLS: Counter[str] = Counter()


class Stage(NamedTuple):
    key: str  # what BENCH_STOP_AFTER names
    label: str
    owner: Any  # the module, class or object whose attribute is the stage's function
    name: str


# The route's stages, in the order a call meets them.
STAGES = (
    Stage("auth", "authentication", hooks, "verified_caller"),
    Stage("body", "body read", hooks, "read_body"),
    Stage("parse", "JSON parse and shape check", hooks, "parse_body"),
    Stage("drafts", "envelope, context and drafts read; rules that apply", pipeline, "read_request"),
    Stage("prefetch", "prefetch completed and checked", pipeline, "patient_data"),
    Stage("facts", "patient facts and rules", pipeline, "assess"),
    Stage("quiet", "stored feedback read (the quiet step)", Runtime, "quiet"),
    Stage("cards", "cards: policy, suggestions, rendering", pipeline, "answer"),
)
# Around the route, within the app.
FRAMING = (
    Stage("answer", "the answer sent (headers and body, through the send wrappers)", Response, "__call__"),
    Stage("access", "the access line", access, "info"),
)
ROUTE = "the route"
APP = "the app, to its answer written"
APP_END = "the app, to its end"
RECORDS = "card records written (CPU of the database thread)"


_TOTALLING = threading.Lock()  # stages end on the loop, worker and database threads, the collector's


def _add(stage: str, seconds: float) -> None:
    """One more call of ``stage``, and its time."""
    with _TOTALLING:
        TOTALS[stage] += seconds
        CALLS[stage] += 1


class _Stopped(Exception):
    """The stage ``BENCH_STOP_AFTER`` names is done: the call answers now."""


def timed(stage: str, func: Callable[..., Any], *, stop: bool = False) -> Callable[..., Any]:
    """``func`` (a function or a coroutine function), adding its wall time to ``stage``; with
    ``stop``, the call answers as soon as it returns."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await func(*args, **kwargs)
            finally:
                _add(stage, time.perf_counter() - started)
            if stop:
                raise _Stopped
            return result

        return timed_coroutine

    @functools.wraps(func)
    def timed_call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = func(*args, **kwargs)
        finally:
            _add(stage, time.perf_counter() - started)
        if stop:
            raise _Stopped
        return result

    return timed_call


def _answering_early(route: Callable[..., Any]) -> Callable[..., Any]:
    """The route, answering ``{"cards": []}`` when a stage stops the call (``BENCH_STOP_AFTER``)."""

    @functools.wraps(route)
    async def answering(request: Any) -> Any:
        try:
            return await route(request)
        except _Stopped:
            return Response(b'{"cards": []}', media_type="application/json")

    return answering


def _thread_cpu(stage: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func``, adding the CPU time of the thread it runs on (the database thread's)."""

    @functools.wraps(func)
    def measured(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            _add(stage, time.thread_time() - started)

    return measured


_collecting: list[float] = []


def _collector(phase: str, info: dict[str, Any]) -> None:
    """``gc.callbacks``: each collection's pause, by generation."""
    if phase == "start":
        _collecting.append(time.perf_counter())
    elif _collecting:
        _add(f"collector, generation {info['generation']}", time.perf_counter() - _collecting.pop())


def _timed_app(app: Any, out: Path) -> Any:
    """The ASGI ``app``, its HTTP calls timed to the answer's last byte written and to their end
    (not the lifespan, which lasts as long as the server; its start installs the SIGUSR1 handler)."""

    async def timed_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _write, out)
            return await app(scope, receive, send)
        started = time.perf_counter()

        async def send_timed(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                _add(APP, time.perf_counter() - started)

        try:
            await app(scope, receive, send_timed)
        finally:
            _add(APP_END, time.perf_counter() - started)

    return timed_app


def install(out: Path, stop_after: str | None = None) -> None:
    """Wrap every stage in place; the route and the app once ``serve`` builds them."""
    if stop_after is not None and stop_after not in {stage.key for stage in STAGES}:
        raise SystemExit(f"BENCH_STOP_AFTER={stop_after}: not one of {', '.join(s.key for s in STAGES)}")
    for stage in (*STAGES, *FRAMING):
        wrapped = timed(stage.label, getattr(stage.owner, stage.name), stop=stage.key == stop_after)
        setattr(stage.owner, stage.name, wrapped)
    hooks.HOOK_ROUTE.app = request_response(_answering_early(timed(ROUTE, hooks.call_service)))
    setattr(Store, "record_issued", _thread_cpu(RECORDS, Store.record_issued))  # noqa: B010
    run = serving.run

    def run_timed(app: Any, **options: Any) -> None:
        if options.get("workers", 1) > 1:  # the workers would import the app afresh, untimed
            raise SystemExit("bench.timed serves one process: drop --workers")
        run(_timed_app(app, out), **options)

    serving.run = run_timed
    gc.callbacks.append(_collector)


def _write(path: Path) -> None:
    """The totals so far as JSON (seconds and counts by stage), then new totals."""
    with _TOTALLING:
        figures = {"seconds": dict(TOTALS), "counts": dict(CALLS)}
        TOTALS.clear()
        CALLS.clear()
    path.with_suffix(".tmp").write_text(json.dumps(figures))
    path.with_suffix(".tmp").replace(path)


if __name__ == "__main__":
    install(Path(os.environ["BENCH_STAGES_OUT"]) / f"{os.getpid()}.json", os.environ.get("BENCH_STOP_AFTER") or None)
    sys.exit(cli.main(sys.argv[1:]))
