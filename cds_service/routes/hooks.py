"""POST /cds-services/{id}: a hook call, answered by the pipeline (``pipeline.evaluate``)."""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from cds_service.deps import RuntimeDep, VerifiedCaller
from cds_service.errors import UnknownService
from cds_service.observability import call_outcome, hook_instance
from cds_service.pipeline.evaluate import evaluate
from cds_service.pipeline.threads import computes_inline
from cds_service.protocol.body import parse_body, read_body
from cds_service.protocol.services import SERVICES, ServiceDefinition
from cds_service.storage.records import issued_to

router = APIRouter()


def service_for(service_id: str) -> ServiceDefinition:
    try:
        return SERVICES[service_id]
    except KeyError:
        raise UnknownService(f"no CDS service with id {service_id!r}; see GET /cds-services") from None


@router.post("/cds-services/{service_id}", summary="Call a CDS service")
async def call_service(service_id: str, request: Request, runtime: RuntimeDep, caller: VerifiedCaller) -> Response:
    service = service_for(service_id)
    started = time.perf_counter()
    raw = await read_body(request, runtime.settings.body_limits)
    body = parse_body(raw, runtime.settings.body_limits)
    if isinstance(body, dict) and isinstance(body.get("hookInstance"), str):
        hook_instance.set(body["hookInstance"][:200])
    # A large call computes in a worker thread (``evaluate``): this loop keeps answering meanwhile.
    result = await evaluate(
        service,
        body,
        knowledge=runtime.knowledge,
        today=runtime.today(),
        new_uuid=runtime.new_uuid,
        fhir=runtime.fhir_access(caller),
        deadline=runtime.settings.fhir_deadline_seconds,
        quiet=runtime.quiet,
        max_draft_orders=runtime.settings.max_draft_orders,
        max_cards=runtime.settings.max_cards,
        inline=computes_inline(body, len(raw)),
    )
    call_outcome.set(f"{len(result.cards)} card(s) {[c.rule_id for c in result.issued]}")
    for card in result.cards:
        runtime.metrics.cards.labels(card["source"]["topic"]["code"], card["indicator"]).inc()
    if result.issued:
        runtime.record_issued(  # queued, written once the answer is out (deps.Runtime.record_issued)
            service_id=service.id,
            hook_instance=result.request.hookInstance,
            patient_id=result.context.patientId,
            cards=issued_to(result.issued, caller),  # analytics show a client its own cards
        )
    runtime.metrics.latency.labels(service.id).observe(time.perf_counter() - started)
    # Serialised here, not by FastAPI: its encoder walks every card again in Python.
    return Response(orjson.dumps(result.response()), media_type="application/json")
