"""GET /cds-services: the services, each describing the checks (enabled rules) it runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cds_service.deps import RuntimeDep, VerifiedCaller

router = APIRouter()


@router.api_route("/cds-services", methods=["GET", "HEAD"], summary="CDS Hooks discovery")
async def discovery(runtime: RuntimeDep, _: VerifiedCaller) -> dict[str, Any]:
    knowledge = runtime.knowledge
    titles = knowledge.catalog.texts
    return {
        "services": [
            service.discovery([titles[rule.id].title for rule in knowledge.rules_for(service.hook)])
            for service in knowledge.offered_services
        ]
    }
