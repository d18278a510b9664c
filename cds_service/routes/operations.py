"""What an operator's probes and scrapers call: /healthz, /readyz, /metrics. No authentication."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from cds_service.deps import RuntimeDep
from cds_service.errors import StorageUnavailable

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Nothing else is checked, so a slow database never restarts it."""
    return {"status": "ok"}


@router.api_route("/readyz", methods=["GET", "HEAD"])
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: the database answers, within ``CDS_DATABASE_WAIT_SECONDS`` (a probe's timeout is
    about a second), and takes writes (``Store.ping``; no card record is held); the clinical
    content is loaded (it is, or start-up failed). A database known to be down is not asked
    again: the gate's own probe is (``storage.availability``)."""
    knowledge = runtime.knowledge
    checks = {"terminology": f"{len(knowledge.terminology.products)} products, {len(knowledge.rules)} rules"}
    ready = True
    try:
        version = await runtime.from_database(runtime.store.ping, unavailable="readiness: not ready", cards_first=False)
        checks["database"] = f"ok, schema version {version}"
    except (StorageUnavailable, SQLAlchemyError) as error:  # an outage is logged by ``from_database``
        reason = error.reason if isinstance(error, StorageUnavailable) else type(error).__name__
        if not isinstance(error, StorageUnavailable):
            log.warning("readiness: database unavailable: %s", reason)
        checks["database"] = f"unavailable ({reason})"
        ready = False
    if len(runtime.writer.held_cards):
        checks["writes"] = f"failing: {len(runtime.writer.held_cards)} card record(s) held in memory"
        ready = False
    if not ready:
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})


@router.api_route("/metrics", methods=["GET", "HEAD"])
async def prometheus_metrics(runtime: RuntimeDep) -> Response:
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
