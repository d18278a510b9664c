"""Where a hook call's time goes: each stage of the pipeline, and what surrounds it, timed alone.

Calls each stage's own function in this process, many times over, on the request of a scenario
(default: the sandbox's order), and prints the µs each costs per call. What is left of the CPU
``make bench`` measures per call, less the echo's, is the HTTP stack: uvicorn, FastAPI's routing
and dependencies, and the middleware. docs/performance-log.md has its tables and what they led to.

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
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scenarios import SELECT, scenarios  # noqa: E402
from cds_service.clock import Clock, at_noon  # noqa: E402
from cds_service.deps import Runtime, build_runtime  # noqa: E402
from cds_service.fhir.models import MODEL_VALUES, _validate, counted_values  # noqa: E402
from cds_service.observability import JsonFormatter, Metrics  # noqa: E402
from cds_service.pipeline import evaluate as pipeline  # noqa: E402
from cds_service.pipeline.knowledge import Knowledge, load_knowledge  # noqa: E402
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
from tools.fixture_day import TODAY  # noqa: E402

ISSUER = "https://bench.example.org"
URL = "http://127.0.0.1:8000"


class Stages:
    """The table being built: each stage timed alone, in the order the call meets it."""

    def __init__(self, calls: int) -> None:
        self.calls = calls
        self.rows: list[tuple[str, float]] = []

    def time(self, name: str, func: Callable[[int], Any], calls: int | None = None, per: int = 1) -> Any:
        """µs per call of ``func(i)`` (÷ ``per`` items a call), the best of three rounds (the others
        caught a collection or a neighbour); returns one more call's result for the next stage."""
        calls = calls or self.calls
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for i in range(calls):
                func(i)
            best = min(best, (time.perf_counter() - started) / calls)
        self.rows.append((name, best * 1e6 / per))
        return func(0)


def pipeline_stages(stages: Stages, runtime: Runtime, knowledge: Knowledge, raw: bytes, clock: Clock) -> None:
    """The pipeline's own stages, body to response JSON, with the stored feedback read between."""
    settings = runtime.settings
    service = SERVICES[SELECT]
    body = stages.time("body: JSON parse and shape check", lambda i: parse_body(raw, settings.body_limits))
    call = stages.time(
        "envelope, context and drafts read; rules that apply",
        lambda i: pipeline.read_request(service, body, knowledge, 200),
    )
    data = asyncio.run(
        complete_prefetch(service.prefetch, body.get("prefetch") or {}, call.context.patientId, None, deadline=1)
    )
    patient, findings = stages.time(
        "patient facts and rules", lambda i: pipeline.assess(call, data, knowledge, clock())
    )
    store = runtime.store
    quiet = store.quiet(patient.patient_id, snooze_days=knowledge.snooze_days)
    with store.engine.connect() as connection:
        now, who = clock(), store.patient_key(patient.patient_id)
        stages.time(
            "stored feedback read (the quiet read, not kept)",
            lambda i: read_quiet(connection, who, (None, ()), now, knowledge.snooze_days, pseudonym=store.pseudonym),
        )
    stages.time("stored feedback read, kept", lambda i: store.kept_quiet(patient.patient_id))
    draft = call.drafts[0].r4
    stages.time(
        "draft checked by the R4 model (not kept)",
        lambda i: _validate(draft, counted_values(MODEL_VALUES, draft)),
        calls=max(stages.calls // 10, 50),
    )
    ids = iter(range(10**9))
    cards, issued, *_ = stages.time(
        "cards: policy, suggestions, rendering",
        lambda i: pipeline.answer(findings, quiet, call.rules, knowledge, lambda: str(next(ids)), 100),
    )
    stages.time("response JSON", lambda i: orjson.dumps({"cards": cards}))
    storage_stages(stages, runtime, CardRecord(SELECT, "bench", patient.patient_id, tuple(issued), clock()), clock)


def storage_stages(stages: Stages, runtime: Runtime, record: CardRecord, clock: Clock) -> None:
    """The writes a call causes: its card record (alone and batched, as the writer batches) and its token id."""
    store = runtime.store

    def write(i: int) -> None:
        store.record_issued([replace(record, hook_instance=f"bench-{i}", issued_at=clock())])

    stages.time("card record written, one per transaction", write, calls=max(stages.calls // 4, 50))
    stages.time(
        "card records written, 8 per transaction (÷ 8)",
        lambda i: store.record_issued(
            [replace(record, hook_instance=f"b{i}-{j}", issued_at=clock()) for j in range(8)]
        ),
        calls=max(stages.calls // 32, 20),
        per=8,
    )
    expires = clock() + timedelta(minutes=5)
    stages.time(
        "token id recorded (replay check)",
        lambda i: runtime.replay.first_use(ISSUER, f"jti-{i}-{time.time_ns()}", expires_at=expires, now=clock()),
        calls=max(stages.calls // 4, 50),
    )


def auth_stage(stages: Stages, key: SigningKey, clients_file: Path, clock: Clock) -> None:
    """Client authentication alone: a fresh ES384 token a call, the replay check answered at once."""
    tokens = [
        key.sign(claims(f"{URL}/cds-services/{SELECT}", clock().timestamp(), iss=ISSUER, lifetime=300))
        for _ in range(stages.calls)
    ]

    async def accept(*_: Any) -> bool:
        return True

    authenticator = Authenticator(
        load_trusted_clients(clients_file, trust_sandbox=False),
        first_use=accept,
        http=lambda: None,  # type: ignore[arg-type, return-value]  # keys inline: never fetched with
        clock=lambda: clock().timestamp(),
        leeway=60,
        audience=Audience([URL]),
    )
    loop = asyncio.new_event_loop()
    stages.time(
        "JWT: decode, ES384 signature, claims",
        lambda i: loop.run_until_complete(authenticator.authenticate(f"Bearer {tokens[i]}", f"/cds-services/{SELECT}")),
    )


def observability_stages(stages: Stages) -> None:
    """The access log line as the service formats it (to /dev/null), and the three instruments a call counts."""
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bench.access")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    stages.time(
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

    stages.time("metrics (three instruments)", count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="sandbox order")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    kept = tempfile.TemporaryDirectory(prefix="cds-breakdown-")  # removed when the process ends
    tmp = Path(kept.name)
    key = SigningKey.generate("ES384")
    (tmp / "clients.json").write_text(json.dumps([{"iss": ISSUER, "jwks": jwks(key)}]))
    settings = Settings(data_dir=tmp, trusted_clients_file=tmp / "clients.json")
    clock = at_noon(TODAY)
    knowledge = load_knowledge(settings)
    runtime = build_runtime(settings, knowledge, clock=clock)
    raw = orjson.dumps(scenarios("http://127.0.0.1:1/fhir")[args.scenario])
    stages = Stages(args.calls)
    pipeline_stages(stages, runtime, knowledge, raw, clock)
    auth_stage(stages, key, tmp / "clients.json", clock)
    observability_stages(stages)
    print(f"Per call, in µs ({args.scenario!r}, {args.calls} calls a stage, best of three rounds):\n")
    print("| stage | µs |\n|---|---:|")
    for name, micros in stages.rows:
        print(f"| {name} | {micros:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
