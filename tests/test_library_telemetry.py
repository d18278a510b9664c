"""FastAPI's own OpenTelemetry stays off: it starts whenever the process has an OpenTelemetry SDK
configured (a site's auto-instrumentation, say), and its spans would carry query strings as sent
and its logs exceptions' messages, which the service keeps out of its own logs.

Run in a process of its own: a global tracer provider, once set, is the process's for good."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import FIXTURES, fixture

# A tracer and a logger provider of the OpenTelemetry API (the SDK is not installed), set globally
# as an SDK would be, recording every span started and every log record emitted.
_SESSION = """
import json, sys, tempfile
from contextlib import contextmanager
from pathlib import Path
from opentelemetry import _logs, trace

recorded = []

class Tracer(trace.Tracer):
    def start_span(self, name, context=None, kind=None, attributes=None, *args, **kwargs):
        recorded.append([name, dict(attributes or {})])
        return trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)

    @contextmanager
    def start_as_current_span(self, name, *args, **kwargs):
        yield self.start_span(name, *args, **kwargs)

class TracerProvider(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        return Tracer()

class Logger(_logs.Logger):
    def emit(self, *args, **kwargs):
        recorded.append(["log", repr(kwargs)])

    def enabled(self, *args, **kwargs):
        return True

class LoggerProvider(_logs.LoggerProvider):
    def get_logger(self, *args, **kwargs):
        return Logger("test")

trace.set_tracer_provider(TracerProvider())
_logs.set_logger_provider(LoggerProvider())

from fastapi.testclient import TestClient
from cds_service.app import create_app
from cds_service.settings import Settings

request = json.loads(sys.argv[1])
with tempfile.TemporaryDirectory() as data, TestClient(create_app(Settings(data_dir=Path(data), auth_mode="off"))) as client:
    answered = [client.post("/cds-services/back-spasm-order-select", json=request).status_code]
    answered.append(client.get("/analytics?period=week&note=query-secret-8f3a").status_code)
    answered.append(client.post("/cds-services/back-spasm-order-select/feedback", json={"feedback": 1}).status_code)
print(json.dumps({"answered": answered, "recorded": recorded}))
"""


def test_fastapi_records_no_span_or_log_of_a_call_with_a_tracer_configured() -> None:
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    done = subprocess.run(
        [sys.executable, "-c", _SESSION, json.dumps(request)],
        capture_output=True,
        text=True,
        cwd=FIXTURES.parent,
        env={k: v for k, v in os.environ.items() if not k.startswith("CDS_")},  # the settings the session names only
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    session = json.loads(done.stdout.splitlines()[-1])
    assert session["answered"] == [200, 400, 400]  # each call reached the app (`note` no parameter of it)
    assert session["recorded"] == []
