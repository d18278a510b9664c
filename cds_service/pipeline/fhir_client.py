"""The EHR's FHIR server, as the prefetch's completion asks it: in its own FHIR version (read
once from ``/metadata``, remembered per server), following ``next`` links on that server only,
every answer checked for what a search answers.

A search for a resource type the server does not have (its CapabilityStatement leaves it out, or,
its capabilities unknown, it answers 404/400 with an OperationOutcome saying the type is unknown)
is no data, not a failed fetch. A type its CapabilityStatement lists is never "no such type",
whatever an error for it says: that is a failed fetch, as any other. The
Medications that the medication orders name only by reference are asked for with them
(``_include``) where the server says it can, and by id (``medications``) where they did not come.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from cds_service.errors import shown
from cds_service.fhir.capabilities import UNKNOWN, ServerFacts, no_such_type, server_facts
from cds_service.fhir.json import as_list, as_str, bundle_resources, is_batch, unread_entry
from cds_service.fhir.versions import DSTU2, R4, STU3
from cds_service.pipeline.server_versions import ServerVersions, versions_for
from cds_service.protocol.services import PrefetchKey
from cds_service.security.allowlist import on_server
from cds_service.security.outbound import Outbound, OutboundError, get_json

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"


class FetchFailed(Exception):
    pass


class NoSuchType(FetchFailed):
    """The server says it has no such resource type: for a search, that is no data, unless its
    CapabilityStatement lists the type (``Listed``)."""


class Listed(FetchFailed):
    """A search refused as of a type the server does not have, though its CapabilityStatement
    lists that type: a failed fetch (a 412 for a key every rule needs, a notice for the others),
    never no data. Of a statement remembered from an earlier call, the statement is read again
    first: the server may have been upgraded since (a DSTU2 server now R4 has no MedicationOrder)."""


# Without a version from /metadata a key is asked in every version at once (a DSTU2 server
# has ProcedureRequest too, so no one answer tells the version), each type it lacks being no data.
VERSIONS = (R4, STU3, DSTU2)
# Ids asked in one ``Medication?_id=`` search: its URL stays well under servers' limits.
_IDS_A_SEARCH = 50


def next_link(bundle: dict[str, Any]) -> str | None:
    for link in as_list(bundle.get("link")):  # a single link object is one link; a number, no link
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
        http: Outbound,
        base: str,
        token: str | None,
        *,
        max_pages: int,
        max_bytes: int,
        on_failure: Callable[[str], None] = lambda key: None,
        versions: ServerVersions | None = None,
    ) -> None:
        self._http = http
        self._base = base.rstrip("/")
        self._headers = {"Accept": FHIR_JSON}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._max_pages = max_pages
        # The keys of this call read in part (a page limit, a next link off the server).
        self.partial: set[str] = set()
        self._max_bytes = max_bytes
        # Told the prefetch key of each fetch that failed or ran out of time (metrics).
        self.on_failure = on_failure
        self._versions = versions if versions is not None else versions_for(http)
        # This call's one reading of the server's facts, shared by the keys fetched concurrently.
        self._facts: asyncio.Future[tuple[ServerFacts, bool]] | None = None
        self._refreshed = False

    @property
    def base(self) -> str:
        return self._base

    async def _get(self, url: str, search_type: str | None = None) -> dict[str, Any]:
        try:
            body = await get_json(self._http, url, headers=self._headers, max_bytes=self._max_bytes)
        except OutboundError as error:
            if search_type and no_such_type(error.status, error.outcome, search_type):
                raise NoSuchType(f"fhirServer answered {error} saying it has no {search_type}") from None
            raise FetchFailed(f"fetching it from fhirServer failed: {error}") from None
        return body

    async def _answer(self, url: str, search_type: str | None, *, read: bool = False) -> dict[str, Any]:
        """A search's page, or (``read``) a read's resource: what else the server answers (a
        batch's Bundle of Bundles, a Binary) fails the fetch, where it was read as no data."""
        body = await self._get(url, search_type)
        kind = body.get("resourceType")
        if kind == "Bundle" and not is_batch(body):
            return body
        if read and isinstance(kind, str) and url.rpartition("/")[0].endswith("/" + kind):
            return body  # a read (Patient/{id}) answered with that resource
        raise FetchFailed(f"fetching it from fhirServer failed: it answered a {shown(kind)}, not a Bundle")

    async def _read_facts(self) -> tuple[ServerFacts, bool]:
        """The server's facts and whether they came from the cache (then they may be stale)."""
        cached = self._versions.get(self._base)
        if cached is not None:
            return cached, True
        try:
            metadata = await get_json(
                self._http, f"{self._base}/metadata", headers=self._headers, max_bytes=self._max_bytes
            )
        except OutboundError as error:
            log.info("fhirServer /metadata could not be read (%s): every FHIR version's types are asked", error)
            if error.status is not None:  # it answered (404, too large): no need to ask on every call
                self._versions.put(self._base, UNKNOWN)
            return UNKNOWN, False
        facts = server_facts(metadata)
        if facts.version is None:
            log.info("fhirServer /metadata states no known FHIR version: every FHIR version's types are asked")
        self._versions.put(self._base, facts)
        return facts, False

    async def facts(self, *, fresh: bool = False) -> tuple[ServerFacts, bool]:
        """The server's facts, read once per call (``fresh``: once more, past the cache)."""
        if self._facts is None or (fresh and not self._refreshed):
            self._refreshed = fresh
            self._facts = asyncio.ensure_future(self._read_facts())
        # Shielded: one reader cut off by its own deadline does not cancel the others' reading.
        return await asyncio.shield(self._facts)

    async def fetch(self, key: PrefetchKey, patient_id: str) -> list[dict[str, Any]]:
        """A key's data, asked in the server's FHIR version; types the server does not have are
        no data. A server remembered as one version that now has none of that version's types
        for the key (or refuses one its remembered statement lists) was upgraded: its /metadata
        is read again and the key asked anew. Types its remembered statement does not list were
        not asked, so they say nothing of an upgrade."""
        facts, cached = await self.facts()
        try:
            found = await self._in_version(key, patient_id, facts)
        except Listed:
            if not (cached and _asked(key, patient_id, facts)):  # read again below, or no data
                raise
            found = None  # the remembered statement may be out of date: read again below
        if found is None and cached and _asked(key, patient_id, facts):
            self._versions.forget(self._base)
            facts, _ = await self.facts(fresh=True)
            found = await self._in_version(key, patient_id, facts)
        if found is None:
            log.info("prefetch %s: the server has none of its resource types: no data", key.name)
        return found or []

    async def medications(self, ids: list[str], key: str) -> list[dict[str, Any]] | None:
        """The Medications of these ids, which ``key``'s orders name only by reference (the server
        did not ``_include`` them, or the request left them out); None when they cannot be read.
        A search not read to its end puts ``key`` in ``partial``."""
        facts, _ = await self.facts()
        if facts.lacks("Medication"):
            log.warning("fhirServer has no Medication type: the Medications orders name were not read")
            return None
        chunks = (ids[i : i + _IDS_A_SEARCH] for i in range(0, len(ids), _IDS_A_SEARCH))
        queries = [f"Medication?_id={','.join(chunk)}&_count={_IDS_A_SEARCH}" for chunk in chunks]
        # Every search answered or failed before this one is told: none left running after it.
        answers = await asyncio.gather(
            *(self.pages(None, q, search_type="Medication", key=key) for q in queries), return_exceptions=True
        )
        if failed := next((a for a in answers if isinstance(a, BaseException)), None):
            if not isinstance(failed, FetchFailed):
                raise failed
            log.warning("the Medications orders name were not read: %s", failed)
            return None
        parts = [a for a in answers if not isinstance(a, BaseException)]
        wanted = set(ids)
        return [
            r for part in parts for r in part if r.get("resourceType") == "Medication" and as_str(r.get("id")) in wanted
        ]

    async def _in_version(self, key: PrefetchKey, patient_id: str, facts: ServerFacts) -> list[dict[str, Any]] | None:
        """Of a server whose version is unknown, every version's types are asked: it answers
        "no such type" to those it lacks, and any other failure fails the key."""
        if facts.version is not None:
            queries = key.queries(patient_id, facts.version)
        else:
            queries = tuple(dict.fromkeys(query for version in VERSIONS for query in key.queries(patient_id, version)))
        return await self._search_each(tuple(_with_includes(q, key.includes, facts) for q in queries), facts, key.name)

    async def _search_each(self, queries: tuple[str, ...], facts: ServerFacts, key: str) -> list[dict[str, Any]] | None:
        """The resources of every query, or None when the server has none of their types."""
        found = await asyncio.gather(*(self._search(query, facts, key) for query in queries))
        if all(part is None for part in found):
            return None
        return [resource for part in found for resource in part or ()]

    async def _search(self, query: str, facts: ServerFacts, key: str) -> list[dict[str, Any]] | None:
        """A query's resources, or None when the server has no such resource type."""
        resource_type, is_search, _ = query.partition("?")
        if not is_search:
            return await self.pages(None, query, key=key)
        if facts.lacks(resource_type):
            return None
        plain, _, included = query.partition("&_include=")
        try:
            return await self.pages(None, query, search_type=resource_type, key=key)
        except NoSuchType as error:
            if not included and facts.lists(resource_type):
                raise Listed(f"{error}, though its CapabilityStatement lists {resource_type}") from None
            if not included:
                return None
        except FetchFailed:
            if not included:
                raise
        # A server that lists the include but refuses it (or no longer lists it: its statement is
        # remembered for an hour) is asked again without it, and not asked it again for a while.
        log.info("prefetch %s: fhirServer refused the search with _include: asked again without it", key)
        self._versions.put(self._base, replace(facts, includes=frozenset()))
        return await self._search(plain, facts, key)

    async def pages(
        self, first: dict[str, Any] | None, url: str | None = None, *, key: str, search_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Resources of a search, from ``first`` (a page already in hand) or ``url``, following ``next``;
        a search not read to its end puts ``key`` in ``partial``.

        ``next`` links are followed only on this server: a prefetch cannot steer us elsewhere.
        (HAPI's page links are the base itself with a query, ``{base}?_getpages=...``.)
        """
        # A query asked without a search type is a read (``_search``).
        page = (
            first
            if first is not None
            else await self._answer(f"{self._base}/{url}", search_type, read=search_type is None)
        )
        resources = _resources(page)
        for _ in range(self._max_pages - 1):
            link = next_link(page) if page.get("resourceType") == "Bundle" else None
            if link is None:
                break
            if not on_server(link, self._base):  # the link itself is not logged: it names the patient
                log.warning("a next-page link of fhirServer points off it: not followed, the rest not read")
                self.partial.add(key)
                break
            page = await self._answer(link, None)
            resources.extend(_resources(page))
        else:
            if page.get("resourceType") == "Bundle" and next_link(page) is not None:
                log.warning(
                    "a fhirServer search has over %d pages (CDS_FHIR_MAX_PAGES): the rest not read", self._max_pages
                )
                self.partial.add(key)
        return resources


def _resources(page: dict[str, Any]) -> list[dict[str, Any]]:
    """A page's resources; one holding an entry of no resource fails the fetch (read as no data,
    it would hide what it stood for from the checks)."""
    resources = list(bundle_resources(page))
    if page.get("resourceType") == "Bundle" and (unread := unread_entry(page, len(resources))) is not None:
        raise FetchFailed(f"fetching it from fhirServer failed: its {unread[0]} {unread[1]}")
    return resources


def _with_includes(query: str, includes: tuple[str, ...], facts: ServerFacts) -> str:
    """``query`` with those of ``includes`` for its type that the server says it supports: a
    server need not send unasked what its orders name, and one that does not support them is
    not asked (it may refuse the search)."""
    resource_type = query.partition("?")[0]
    said = facts.includes
    asked = [i for i in includes if i.partition(":")[0] == resource_type and (i in said or f"{i}:Medication" in said)]
    return query + "".join(f"&_include={i}" for i in asked)


def _asked(key: PrefetchKey, patient_id: str, facts: ServerFacts) -> bool:
    """Whether a server of known version was asked for the key: a read always goes, a search
    unless its type is one the server's statement leaves out."""
    if facts.version is None:
        return False
    split = (query.partition("?") for query in key.queries(patient_id, facts.version))
    return any(not is_search or not facts.lacks(resource_type) for resource_type, is_search, _ in split)
