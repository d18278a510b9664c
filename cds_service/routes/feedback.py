"""POST /cds-services/{id}/feedback: what clinicians did with the cards, stored before we answer."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from fastapi import APIRouter, Request

from cds_service.deps import RuntimeDep, VerifiedCaller
from cds_service.protocol.body import read_json
from cds_service.protocol.feedback import parse_feedback
from cds_service.protocol.services import service_for
from cds_service.storage.records import Owner

log = logging.getLogger(__name__)
router = APIRouter()


@router.post("/cds-services/{service_id}/feedback", summary="Feedback on cards")
async def receive_feedback(
    service_id: str, request: Request, runtime: RuntimeDep, caller: VerifiedCaller
) -> dict[str, Any]:
    service = service_for(service_id)
    items = parse_feedback(await read_json(request, runtime.settings.body_limits), runtime.clock()).feedback
    # Nothing is acknowledged that is not stored: the client resends (stored once, however often).
    receipt = await runtime.from_database(
        partial(runtime.store.record_feedback, service_id=service.id, items=items, owner=Owner.of(caller)),
        unavailable="the database is unavailable: nothing was stored; send the feedback again later",
        wait=runtime.settings.database_statement_timeout_seconds,
    )
    refused = len(receipt.refused)
    log.info("feedback %s: %d item(s), %d new, %d refused", service.id, len(items), receipt.stored, refused)
    for item in items:
        runtime.metrics.feedback.labels(item.outcome).inc()
    for refusal in receipt.refused:
        runtime.metrics.feedback_refused.labels(refusal.kind).inc()
    answer: dict[str, Any] = {"received": len(items), "stored": receipt.stored}
    if receipt.refused:  # CDS Hooks defines no feedback answer: today's two counts, and the items not stored
        answer["refused"] = [{"index": r.index, "reason": r.reason} for r in receipt.refused]
    return answer
