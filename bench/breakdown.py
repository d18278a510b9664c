"""Where a hook call's time goes: each stage of the pipeline, and what surrounds it, timed alone.

Calls each stage's own function in this process, many times over, on the request of a scenario
(default: the sandbox's order), and prints the µs each costs per call. What is left of the CPU
``make bench`` measures per call, less the echo's, is the HTTP stack: uvicorn, FastAPI's routing
and dependencies, and the middleware. docs/performance.md has the table and what it led to.

    python bench/breakdown.py [--scenario "sandbox order"] [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scenarios import SELECT, scenarios  # noqa: E402
from cds_service.clock import at_noon  # noqa: E402
from cds_service.deps import build_runtime  # noqa: E402
from cds_service.fhir.models import _validate  # noqa: E402
from cds_service.observability import JsonFormatter, Metrics  # noqa: E402
from cds_service.pipeline import evaluate as pipeline  # noqa: E402
from cds_service.pipeline.knowledge import load_knowledge  # noqa: E402
from cds_service.pipeline.prefetch import complete_prefetch  # noqa: E402
from cds_service.protocol.body import parse_body  # noqa: E402
from cds_service.protocol.services import SERVICES  # noqa: E402
from cds_service.security.audience import Audience  # noqa: E402
from cds_service.security.auth import Authenticator  # noqa: E402
from cds_service.security.clients import load_trusted_clients  # noqa: E402
from cds_service.settings import Settings  # noqa: E402
from cds_service.storage.quiet import read_quiet  # noqa: E402
from cds_service.storage.records import CardRecord  # noqa: E402
from tests.tokens import SigningKey, claims, jwks  # noqa: E402

ISSUER = "https://bench.example.org"
URL = "http://127.0.0.1:8000"


def timed(calls: int, func: Callable[[int], Any]) -> float:
    """µs per call of ``func(i)``, the best of three rounds (the others caught a collection or a neighbour)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(calls):
            func(i)
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="sandbox order")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cds-breakdown-"))
    key = SigningKey.generate("ES384")
    (tmp / "clients.json").write_text(json.dumps([{"iss": ISSUER, "jwks": jwks(key)}]))
    settings = Settings(data_dir=tmp, trusted_clients_file=tmp / "clients.json")
    clock = at_noon(date(2026, 11, 21))
    knowledge = load_knowledge(settings)
    runtime = build_runtime(settings, knowledge, clock=clock)
    service = SERVICES[SELECT]
    raw = orjson.dumps(scenarios("http://127.0.0.1:1/fhir")[args.scenario])
    body = parse_body(raw, settings.body_limits)
    today = clock().date()
    n = args.calls
    rows: list[tuple[str, float]] = []

    def stage(name: str, func: Callable[[int], Any], calls: int = n) -> Any:
        rows.append((name, timed(calls, func)))
        return func(0)

    stage("body: JSON parse and shape check", lambda i: parse_body(raw, settings.body_limits))
    call = stage(
        "envelope, context and drafts read; rules that apply", lambda i: pipeline._read(service, body, knowledge, 200)
    )
    data = asyncio.run(
        complete_prefetch(service.prefetch, body.get("prefetch") or {}, call.context.patientId, None, deadline=1)
    )
    stage("patient facts and rules", lambda i: pipeline._assess(service, call, data, knowledge, today))
    patient, findings = pipeline._assess(service, call, data, knowledge, today)
    store = runtime.store
    quiet = store.quiet(patient.patient_id, snooze_days=knowledge.snooze_days)
    with store.engine.connect() as connection:
        now, who = clock(), store.patient_key(patient.patient_id)
        stage(
            "stored feedback read (the quiet read, not kept)",
            lambda i: read_quiet(connection, who, (), now, knowledge.snooze_days),
        )
    stage(
        "stored feedback read, kept (SQLite)",
        lambda i: store.quiet(patient.patient_id, snooze_days=knowledge.snooze_days),
    )
    draft = call.drafts[0].r4
    stage("draft checked by the R4 model (not kept)", lambda i: _validate(draft), calls=max(n // 10, 50))
    ids = iter(range(10**9))
    cards, issued = stage(
        "cards: policy, suggestions, rendering",
        lambda i: pipeline._answer(findings, quiet, call.rules, knowledge, lambda: str(next(ids)), 100),
    )
    stage("response JSON", lambda i: orjson.dumps({"cards": cards}))
    record = CardRecord(SELECT, "bench", patient.patient_id, tuple(issued), clock())

    def write(i: int) -> None:
        store.record_issued([CardRecord(SELECT, f"bench-{i}", patient.patient_id, tuple(issued), clock())])

    stage("card record written, one per transaction", write, calls=max(n // 4, 50))
    batch = [record] * 8
    stage(
        "card records written, 8 per transaction (÷ 8)",
        lambda i: store.record_issued(
            [CardRecord(SELECT, f"b{i}-{j}", r.patient_id, tuple(issued), clock()) for j, r in enumerate(batch)]
        ),
        calls=max(n // 32, 20),
    )
    rows[-1] = (rows[-1][0], rows[-1][1] / 8)
    expires = clock() + timedelta(minutes=5)
    stage(
        "token id recorded (replay check)",
        lambda i: runtime.replay.first_use(ISSUER, f"jti-{i}-{time.time_ns()}", expires_at=expires, now=clock()),
        calls=max(n // 4, 50),
    )
    tokens = [
        key.sign(claims(f"{URL}/cds-services/{SELECT}", clock().timestamp(), iss=ISSUER, lifetime=300))
        for _ in range(n)
    ]

    async def accept(*_: Any) -> bool:
        return True

    clients = load_trusted_clients(tmp / "clients.json", trust_sandbox=False)
    authenticator = Authenticator(
        clients,
        first_use=accept,
        http=lambda: None,
        clock=lambda: clock().timestamp(),
        leeway=60,
        audience=Audience([URL]),
    )  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    stage(
        "JWT: decode, ES384 signature, claims",
        lambda i: loop.run_until_complete(authenticator.authenticate(f"Bearer {tokens[i]}", f"/cds-services/{SELECT}")),
    )
    formatter = JsonFormatter()
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    handler.setFormatter(formatter)
    logger = logging.getLogger("bench.access")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    stage(
        "the access log line (JSON)",
        lambda i: logger.info(
            "%s %s %d %.1f ms%s", "POST", "/cds-services/{service_id}", 200, 1.0, ": 1 card(s) ['x']"
        ),
    )
    metrics = Metrics()

    def count(i: int) -> None:
        metrics.cards.labels("cyclobenzaprine-duration", "warning").inc()
        metrics.latency.labels(SELECT).observe(0.001)
        metrics.requests.labels("/cds-services/{service_id}", "200").inc()

    stage("metrics (three instruments)", count)
    print(f"Per call, in µs ({args.scenario!r}, {n} calls a stage, best of three rounds):\n")
    print("| stage | µs |\n|---|---:|")
    for name, micros in rows:
        print(f"| {name} | {micros:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
