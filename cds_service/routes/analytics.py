"""GET /analytics (JSON) and /analytics/report (a page for people): card outcomes per rule,
of the caller's own cards (its issuer's and tenant's), or of every client's for an operator."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from cds_service.deps import Runtime, RuntimeDep, VerifiedCaller
from cds_service.errors import SHOWN_CHARS, InvalidRequest, shown
from cds_service.reporting.analytics import Query as AnalyticsQuery
from cds_service.reporting.analytics import analytics, parse_query, scope_of
from cds_service.reporting.html import CONTENT_SECURITY_POLICY, html_report

router = APIRouter()
# The page's: it runs no script and loads nothing but its own style sheet; no other site frames it
# (clickjacking) and no browser reads it as another type than it says.
REPORT_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@router.api_route("/analytics", methods=["GET", "HEAD"], summary="Card outcomes per rule and period")
async def get_analytics(
    request: Request,
    runtime: RuntimeDep,
    caller: VerifiedCaller,
    from_: Annotated[str | None, Query(alias="from", description="first day, YYYY-MM-DD")] = None,
    to: Annotated[str | None, Query(description="last day, YYYY-MM-DD (default today)")] = None,
    period: Annotated[str | None, Query(description="day, week (default) or month")] = None,
) -> dict[str, Any]:
    _known_and_once(request)
    query = parse_query(from_, to, period, runtime.today(), scope_of(caller))  # the site's days, as counted
    return await _figures(runtime, query)


@router.api_route(
    "/analytics/report",
    methods=["GET", "HEAD"],
    summary="Card outcomes per rule, as a page for people",
    response_class=HTMLResponse,
)
async def get_analytics_report(
    request: Request,
    runtime: RuntimeDep,
    caller: VerifiedCaller,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: Annotated[str | None, Query()] = None,
    period: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    _known_and_once(request)
    query = parse_query(from_, to, period, runtime.today(), scope_of(caller))  # the site's days, as counted
    return HTMLResponse(html_report(await _figures(runtime, query)), headers=REPORT_HEADERS)


# What the routes take; the page's form sends these and nothing else.
PARAMETERS = ("from", "to", "period")
# Of the unknown parameters of one query, those named (1,000 of them made no better answer).
_MOST_NAMED = 10


def _known_and_once(request: Request) -> None:
    """Each parameter one of ``PARAMETERS``, given once: a misspelt one (``FROM``, ``form``) was
    passed over, the default range answered as though it had been asked for; of one given twice,
    which was meant cannot be known (the last was taken). Either is a 400 naming it."""
    if unknown := [name for name in request.query_params if name not in PARAMETERS]:
        named = ", ".join(shown(name) for name in unknown[:_MOST_NAMED])
        more = f" and {len(unknown) - _MOST_NAMED} more" if len(unknown) > _MOST_NAMED else ""
        raise InvalidRequest(
            f"{named}{more}: not a parameter of the analytics, which are {', '.join(PARAMETERS)} (in lower case)",
            fields=[name[:SHOWN_CHARS] for name in unknown[:_MOST_NAMED]],  # a name is the caller's to make long
        )
    for name in PARAMETERS:
        if len(given := request.query_params.getlist(name)) > 1:
            raise InvalidRequest(f"{name}: given {len(given)} times; give it once", fields=[name])


async def _figures(runtime: Runtime, query: AnalyticsQuery) -> dict[str, Any]:
    """The figures, counting the cards just issued; with the database out of reach, a 503 that
    says to ask again (analytics run in a thread of their own, not the gate's: a long read is
    no outage)."""
    return await runtime.from_database(
        partial(analytics, runtime.store, runtime.knowledge, query),
        unavailable="the database is unavailable: ask for the analytics again later",
        apart=True,
    )
