"""POST /cds-services/{id}: a hook call, answered by the pipeline (``pipeline.evaluate``).

A plain Starlette route at the app's top level, not a FastAPI one: FastAPI's dependency
resolution (the runtime, the caller, the path parameter) and its included-router dispatch cost
15% of a small hook call's instructions (issue 17), and the OpenAPI document is written by hand
anyway (``routes.openapi``). It asks ``deps`` for the same runtime and verified caller as every
other route."""

from __future__ import annotations

import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from cds_service.deps import runtime_of, verified_caller
from cds_service.observability import call_outcome, in_call, loggable
from cds_service.pipeline.evaluate import evaluate
from cds_service.pipeline.threads import computes_inline
from cds_service.protocol.body import parse_body, read_body
from cds_service.storage.records import issued_to


async def call_service(request: Request) -> Response:
    runtime = runtime_of(request)
    caller = await verified_caller(request, runtime)
    service = runtime.knowledge.offered_service(request.path_params["service_id"])  # before the body is read
    started = time.perf_counter()
    raw = await read_body(request, runtime.settings.body_limits)
    body = parse_body(raw, runtime.settings.body_limits)
    said = in_call(body)  # the hookInstance as the log and the card records say it, read once
    # A large call computes in a worker thread (``evaluate``): this loop keeps answering meanwhile.
    result = await evaluate(
        service,
        body,
        knowledge=runtime.knowledge,
        now=runtime.clock(),
        new_uuid=runtime.new_uuid,
        fhir=runtime.fhir_access(caller),
        deadline=runtime.settings.fhir_deadline_seconds,
        quiet=runtime.quiet_for(caller),
        max_draft_orders=runtime.settings.max_draft_orders,
        max_cards=runtime.settings.max_cards,
        inline=computes_inline(body, len(raw)),
    )
    call_outcome.set(f"{len(result.cards)} card(s) {[c.rule_id for c in result.issued]}")
    for card in result.cards:
        runtime.metrics.card_shown(card["source"]["topic"]["code"], card["indicator"]).inc()
    notices = result.notices
    if result.issued or notices:
        runtime.record_issued(  # queued, written once the answer is out (deps.Runtime.record_issued)
            service_id=service.id,
            hook_instance=said or loggable(result.request.hookInstance),
            patient_id=result.context.patientId,
            cards=issued_to(result.issued, caller),  # analytics show a client its own cards
            notices=issued_to(notices, caller),
        )
    runtime.metrics.hook_latency(service.id).observe(time.perf_counter() - started)
    # Serialised here, not by FastAPI: its encoder walks every card again in Python.
    return Response(orjson.dumps(result.response()), media_type="application/json")


class _NamedRoute(Route):
    """A Starlette route that puts itself in the scope, as FastAPI's routes do: the request
    metrics and the access line name the route's template (``observability.CountRequests``)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


HOOK_ROUTE = _NamedRoute("/cds-services/{service_id}", call_service, methods=["POST"])
