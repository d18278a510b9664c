"""GET /cds-services: the services, each describing the checks (enabled rules) it runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cds_service.deps import RuntimeDep, VerifiedCaller
from cds_service.protocol.services import SERVICES

router = APIRouter()


@router.api_route("/cds-services", methods=["GET", "HEAD"], summary="CDS Hooks discovery")
async def discovery(runtime: RuntimeDep, _: VerifiedCaller) -> dict[str, Any]:
    knowledge = runtime.knowledge
    services = []
    for key in sorted(SERVICES):
        rules = knowledge.rules_for(SERVICES[key].hook)
        if rules:
            services.append(SERVICES[key].discovery([knowledge.catalog.texts[r.id].title for r in rules]))
    return {"services": services}
