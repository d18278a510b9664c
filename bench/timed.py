"""``cds-service serve`` with each stage of a hook call timed where it runs: in the server, under
load (``bench/stages.py`` drives it with wrk).

``bench/breakdown.py`` calls each stage alone many times over, on a parsed body its caches and
the CPU's have long met: a floor, not what a call pays. Here the same service answers wrk, and
each stage's function (looked up by name at call time, so wrapped in place) adds its wall time
to a running total: the stages in the order a call meets them, the route and the whole app
around them, the collector's pauses (``gc.callbacks``), and the card records' writes (CPU time of
the database thread). SIGUSR1 writes the totals to ``$BENCH_STAGES_OUT/<pid>.json`` and starts
new ones, so the driver takes a warm-up's apart from the run it measures. Nothing here is
imported by the service.

    BENCH_STAGES_OUT=/tmp/stages python -m bench.timed serve --port 8000
"""

from __future__ import annotations

import functools
import gc
import inspect
import json
import os
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def _add(stage: str, seconds: float) -> None:
    TOTALS[stage] += seconds
    CALLS[stage] += 1


def timed(stage: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a function or a coroutine function), adding its wall time to ``stage``."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await func(*args, **kwargs)
            finally:
                _add(stage, time.perf_counter() - started)

        return timed_coroutine

    @functools.wraps(func)
    def timed_call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            _add(stage, time.perf_counter() - started)

    return timed_call


def _timed_app(app: Any) -> Any:
    """The ASGI ``app``, its HTTP calls timed (not the lifespan, which lasts as long as the server)."""

    async def timed_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        started = time.perf_counter()
        try:
            await app(scope, receive, send)
        finally:
            _add(APP, time.perf_counter() - started)

    return timed_app


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
    if phase == "start":
        _collecting.append(time.perf_counter())
    elif _collecting:
        _add(f"collector, generation {info['generation']}", time.perf_counter() - _collecting.pop())


# The stages in the order a call meets them: (stage, module or class, attribute).
STAGES: list[tuple[str, Any, str]] = [
    ("authentication", hooks, "verified_caller"),
    ("body read", hooks, "read_body"),
    ("JSON parse and shape check", hooks, "parse_body"),
    ("envelope, context and drafts read; rules that apply", pipeline, "_read"),
    ("prefetch completed and checked", pipeline, "_patient_data"),
    ("patient facts and rules", pipeline, "_assess"),
    ("stored feedback read (the quiet step)", Runtime, "quiet"),
    ("cards: policy, suggestions, rendering", pipeline, "_answer"),
    ("response sent (in the middleware below)", Response, "__call__"),
    ("access line (in the middleware below)", access, "info"),
]
ROUTE = "the route (the stages above, metrics, the record queued, response JSON)"
APP = "the app (the route, middleware: CORS, errors, request metrics, access line)"
RECORDS = "card records written (CPU of the database thread, per call)"


def install() -> None:
    """Wrap every stage in place; the route and the app once ``serve`` builds them."""
    for stage, owner, name in STAGES:
        setattr(owner, name, timed(stage, getattr(owner, name)))
    hooks.HOOK_ROUTE.app = request_response(timed(ROUTE, hooks.call_service))
    setattr(Store, "record_issued", _thread_cpu(RECORDS, Store.record_issued))  # noqa: B010
    run = serving.run

    def run_timed(app: Any, **options: Any) -> None:
        run(_timed_app(app), **options)

    serving.run = run_timed
    gc.callbacks.append(_collector)
    out = Path(os.environ["BENCH_STAGES_OUT"]) / f"{os.getpid()}.json"
    signal.signal(signal.SIGUSR1, lambda *_: _write(out))


def _write(path: Path) -> None:
    """The totals so far as JSON (seconds and counts by stage), then new totals."""
    figures = {"seconds": dict(TOTALS), "counts": dict(CALLS)}
    path.with_suffix(".tmp").write_text(json.dumps(figures))
    path.with_suffix(".tmp").replace(path)
    TOTALS.clear()
    CALLS.clear()


if __name__ == "__main__":
    install()
    sys.exit(cli.main(sys.argv[1:]))
