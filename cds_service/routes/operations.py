"""What an operator's probes and scrapers call: /healthz, /readyz, /metrics. No authentication."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from cds_service.deps import RuntimeDep

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Nothing else is checked, so a slow database never restarts it."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: the database answers and the clinical content is loaded (it is, or start-up failed)."""
    knowledge = runtime.knowledge
    checks = {"terminology": f"{len(knowledge.terminology.products)} products, {len(knowledge.rules)} rules"}
    try:
        version = await run_in_threadpool(runtime.store.ping)
        checks["database"] = f"ok, schema version {version}"
    except SQLAlchemyError as error:
        log.error("readiness: database unavailable: %s", type(error).__name__)
        checks["database"] = f"unavailable ({type(error).__name__})"
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/metrics")
async def prometheus_metrics(runtime: RuntimeDep) -> Response:
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
