"""Completing the prefetch: use what the client sent, fetch what it did not.

Per key (CDS Hooks 2.0 §Prefetch): present → use it (following its ``next`` links); ``null``
→ no data; missing, or an OperationOutcome (the client's own fetch failed) → fetch it from
``fhirServer``. All fetches of a call run concurrently under one deadline, so a slow FHIR
server costs at most that deadline. Keys that still have no data are reported as
unavailable, each with the reason; whether that means 412 or a degraded card is the service definition's call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from cds_service.fhir.json import bundle_resources
from cds_service.protocol.services import PrefetchKey
from cds_service.security.outbound import OutboundError, get_json

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"


class FetchFailed(Exception):
    pass


@dataclass(frozen=True)
class PatientData:
    """What the prefetch (completed by fetching) holds, per prefetch key."""

    resources: dict[str, list[dict[str, Any]]]
    # Keys with no data, each with why (said in the 412 answer when the key is required).
    unavailable: dict[str, str] = field(default_factory=dict)


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


@dataclass(frozen=True)
class Unfetchable:
    """A ``fhirServer`` the service will not call (not allow-listed, or offline evaluation)."""

    reason: str


class FhirClient:
    """Reads from one EHR FHIR server for one call, with that call's access token."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base: str,
        token: str | None,
        *,
        max_pages: int,
        max_bytes: int,
        on_failure: Callable[[str], None] = lambda key: None,
    ) -> None:
        self._http = http
        self._base = base.rstrip("/")
        self._headers = {"Accept": FHIR_JSON}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._max_pages = max_pages
        self._max_bytes = max_bytes
        # Told the prefetch key of each fetch that failed or ran out of time (metrics).
        self.on_failure = on_failure

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            body = await get_json(self._http, url, headers=self._headers, max_bytes=self._max_bytes)
        except OutboundError as error:
            raise FetchFailed(f"fetching it from fhirServer failed: {error}") from None
        if body.get("resourceType") == "OperationOutcome":
            raise FetchFailed("fetching it from fhirServer failed: the server answered an OperationOutcome")
        return body

    async def pages(self, first: dict[str, Any] | None, url: str | None = None) -> list[dict[str, Any]]:
        """Resources of a search, from ``first`` (a page already in hand) or ``url``, following ``next``.

        ``next`` links are followed only on this server: a prefetch cannot steer us elsewhere.
        """
        page = first if first is not None else await self._get(f"{self._base}/{url}")
        resources = list(bundle_resources(page))
        for _ in range(self._max_pages - 1):
            link = _next_link(page) if page.get("resourceType") == "Bundle" else None
            if link is None or not link.startswith(self._base + "/"):
                break
            page = await self._get(link)
            resources.extend(bundle_resources(page))
        return resources


async def complete_prefetch(
    keys: tuple[PrefetchKey, ...],
    prefetch: dict[str, dict[str, Any] | None],
    patient_id: str,
    client: FhirClient | Unfetchable | None,
    *,
    deadline: float,
) -> PatientData:
    resources: dict[str, list[dict[str, Any]]] = {}
    unavailable: dict[str, str] = {}
    jobs: dict[str, Awaitable[list[dict[str, Any]]]] = {}
    for key in keys:
        if key.name in prefetch and prefetch[key.name] is None:
            resources[key.name] = []
            continue
        value = prefetch.get(key.name)
        if value is not None and value.get("resourceType") != "OperationOutcome":
            if isinstance(client, FhirClient) and value.get("resourceType") == "Bundle" and _next_link(value):
                jobs[key.name] = client.pages(value)
            else:
                resources[key.name] = list(bundle_resources(value))
            continue
        if value is not None:
            log.info("prefetch %s holds an OperationOutcome: fetching it", key.name)
        if isinstance(client, FhirClient):
            jobs[key.name] = client.pages(None, key.query(patient_id))
        else:
            unavailable[key.name] = client.reason if client else "the request has no fhirServer"

    if jobs:
        tasks = {name: asyncio.ensure_future(job) for name, job in jobs.items()}
        done, pending = await asyncio.wait(tasks.values(), timeout=deadline)
        for task in pending:
            task.cancel()
        for name, task in tasks.items():
            if task in done and task.exception() is None:
                resources[name] = task.result()
            else:
                client.on_failure(name)  # type: ignore[union-attr]
                unavailable[name] = (
                    f"fetching it from fhirServer did not finish within {deadline:g} s"
                    if task in pending
                    else str(task.exception())
                )
    for name, reason in unavailable.items():
        log.warning("prefetch %s unavailable: %s", name, reason)
    return PatientData(resources=resources, unavailable=unavailable)
