"""The request read: its envelope and context validated for the service's hook, what came with
it that the service reads, and the drafts under review."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cds_service.content.terminology import Terminology
from cds_service.errors import InvalidRequest, shown
from cds_service.facts.medications import MedicationIndex
from cds_service.facts.model import Order
from cds_service.facts.orders import read_orders
from cds_service.fhir.json import reference_of
from cds_service.protocol.request import HookContext, HookRequest, parse_hook_request
from cds_service.protocol.services import ServiceDefinition


def validate(service: ServiceDefinition, body: object, *, max_draft_orders: int) -> tuple[HookRequest, HookContext]:
    """The envelope and the context, validated for this service's hook."""
    request, context = parse_hook_request(body, service.context, max_draft_orders=max_draft_orders)
    if request.hook != service.hook:
        raise InvalidRequest(
            f"hook: service {service.id} answers {service.hook!r}, not {shown(request.hook)}", fields=["hook"]
        )
    return request, context


def given_resources(service: ServiceDefinition, request: HookRequest, context: HookContext) -> Iterator[Any]:
    """What came with the request that the service reads: the draft Bundle and the prefetch's values
    of its own keys, as sent (a key it never asked for could name a drug wrongly: ``read_prefetch``)."""
    yield context.draft_bundle
    prefetch = request.prefetch or {}
    yield from (prefetch[key.name] for key in service.prefetch if key.name in prefetch)


def orders_under_review(
    context: HookContext, raw: list[dict[str, Any]], terminology: Terminology, medications: MedicationIndex
) -> tuple[list[Order], list[Order]]:
    """Every draft order, and those under review (the hook's context says which)."""
    drafts = read_orders(raw, terminology, medications)
    reviewed = {reference_of(r) for r in context.under_review(raw)}
    return drafts, [order for order in drafts if order.reference in reviewed]
