"""GET /analytics (JSON) and /analytics/report (a page for people): card outcomes per rule,
of the caller's own cards (its issuer's and tenant's), or of every client's for an operator."""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from cds_service.deps import RuntimeDep, VerifiedCaller
from cds_service.reporting.analytics import analytics, parse_query, scope_of
from cds_service.reporting.html import html_report
from cds_service.storage.availability import DatabaseUnavailable

router = APIRouter()


@router.get("/analytics", summary="Card outcomes per rule and period")
async def get_analytics(
    runtime: RuntimeDep,
    caller: VerifiedCaller,
    from_: Annotated[str | None, Query(alias="from", description="first day, YYYY-MM-DD")] = None,
    to: Annotated[str | None, Query(description="last day, YYYY-MM-DD (default today)")] = None,
    period: Annotated[str | None, Query(description="day, week (default) or month")] = None,
) -> dict[str, Any]:
    query = parse_query(from_, to, period, runtime.today(), scope_of(caller))  # the site's days, as counted
    with suppress(DatabaseUnavailable):  # the cards just issued count (without the database, nothing does)
        await runtime.cards_written()
    return await run_in_threadpool(analytics, runtime.store, runtime.knowledge, query)


@router.get("/analytics/report", summary="Card outcomes per rule, as a page for people", response_class=HTMLResponse)
async def get_analytics_report(
    runtime: RuntimeDep,
    caller: VerifiedCaller,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: Annotated[str | None, Query()] = None,
    period: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    query = parse_query(from_, to, period, runtime.today(), scope_of(caller))  # the site's days, as counted
    with suppress(DatabaseUnavailable):
        await runtime.cards_written()
    return HTMLResponse(html_report(await run_in_threadpool(analytics, runtime.store, runtime.knowledge, query)))
