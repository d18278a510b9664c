"""Every outbound HTTP call the service makes: EHR FHIR servers and trusted clients' key sets.

Both are addressed by URLs that arrive from outside, so each call is a GET with no redirects
(a redirect could leave the allow-listed host) and a bounded response: a misbehaving server
can cost us at most ``max_bytes`` of memory and the caller's deadline in time.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from cds_service.fhir.json import too_deep

# How much of a 400 or 404 answer is read for its OperationOutcome (which says, for instance,
# that the server has no such resource type).
OUTCOME_BYTES = 64 * 1024


class OutboundError(Exception):
    """The call failed; the message says how, without the URL's query or any header.

    ``status`` is the HTTP status when the server answered (200 for an answer too large or not
    JSON object), None when it did not (refused, timed out); ``outcome`` the OperationOutcome
    of a 400 or 404 answer, when it sent one (small enough to read)."""

    def __init__(self, message: str, *, status: int | None = None, outcome: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome


async def _outcome(response: httpx.Response) -> dict[str, Any] | None:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > OUTCOME_BYTES:
            return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome" and not too_deep(value):
        return value
    return None


async def get_json(http: httpx.AsyncClient, url: str, *, headers: dict[str, str], max_bytes: int) -> dict[str, Any]:
    try:
        async with http.stream("GET", url, headers=headers, follow_redirects=False) as response:
            if response.status_code != 200:
                status = response.status_code
                outcome = await _outcome(response) if status in (400, 404) else None
                raise OutboundError(f"HTTP {status}", status=status, outcome=outcome)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise OutboundError(f"response of {declared} bytes is over the {max_bytes}-byte limit", status=200)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise OutboundError(f"response is over the {max_bytes}-byte limit", status=200)
    except httpx.HTTPError as error:
        raise OutboundError(type(error).__name__) from None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise OutboundError("response is not JSON", status=200) from None
    if not isinstance(value, dict):
        raise OutboundError("response is not a JSON object", status=200)
    if too_deep(value):
        raise OutboundError("response nests too deep to be FHIR", status=200)
    return value
