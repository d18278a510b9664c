"""POST /cds-services/{id}/feedback: what clinicians did with the cards, stored before we answer."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from cds_service.deps import RuntimeDep, VerifiedCaller
from cds_service.protocol.body import read_json
from cds_service.protocol.feedback import parse_feedback
from cds_service.routes.hooks import service_for

log = logging.getLogger(__name__)
router = APIRouter()


@router.post("/cds-services/{service_id}/feedback", summary="Feedback on cards")
async def receive_feedback(service_id: str, request: Request, runtime: RuntimeDep, _: VerifiedCaller) -> dict[str, Any]:
    service = service_for(service_id)
    items = parse_feedback(await read_json(request, runtime.settings.body_limits)).feedback
    stored = await run_in_threadpool(runtime.store.record_feedback, service_id=service.id, items=items)
    log.info("feedback %s: %d item(s), %d new", service.id, len(items), stored)
    for item in items:
        runtime.metrics.feedback.labels(item.outcome).inc()
    return {"received": len(items), "stored": stored}
