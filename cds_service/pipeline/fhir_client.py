"""The EHR's FHIR server, as the prefetch's completion asks it: in its own FHIR version (read
once from ``/metadata``, remembered per server), following ``next`` links on that server only,
every answer checked for what a search answers.

A search for a resource type the server does not have (its CapabilityStatement leaves it out, or,
its capabilities unknown, it answers 404/400 with an OperationOutcome saying the type is unknown)
is no data, not a failed fetch. A type its CapabilityStatement lists is never "no such type",
whatever an error for it says: that is a failed fetch, as any other. The
Medications that the medication orders name only by reference are asked for with them
(``_include``) where the server says it can, and by id (``medications``) where they did not come.
A search's pages are read, and checked, by ``fhir_pages``; /metadata by ``server_versions``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from cds_service.fhir.capabilities import ServerFacts
from cds_service.fhir.json import as_str
from cds_service.fhir.versions import DSTU2, R4, STU3
from cds_service.pipeline.fhir_pages import FHIR_JSON, FetchFailed, NoSuchType, Pages
from cds_service.pipeline.server_versions import ServerVersions, read_facts, versions_for
from cds_service.protocol.services import PrefetchKey
from cds_service.security.outbound import Outbound

log = logging.getLogger(__name__)


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
_ID_CHARS = 2000


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
        self._max_bytes = max_bytes
        self._on_failure = on_failure
        self._failed: set[str] = set()
        self._pages = Pages(
            http, self._base, self._headers, max_pages=max_pages, max_bytes=max_bytes, on_failure=self.on_failure
        )
        self._versions = versions if versions is not None else versions_for(http)
        # This call's one reading of the server's facts, shared by the keys fetched concurrently.
        self._facts: asyncio.Future[tuple[ServerFacts, bool]] | None = None
        self._refreshed = False

    @property
    def base(self) -> str:
        return self._base

    def on_failure(self, key: str) -> None:
        """Tells the metrics of a key this call could not read whole, once a call whatever failed
        of it (docs/operations.md): a key cut off at the deadline whose Medications were then not
        read was counted twice, as two keys failing."""
        if key not in self._failed:
            self._failed.add(key)
            self._on_failure(key)

    @property
    def partial(self) -> set[str]:
        """The keys of this call read in part (a page limit, a next link off the server or failing)."""
        return self._pages.partial

    async def pages(
        self,
        first: dict[str, Any] | None,
        url: str | None = None,
        *,
        key: str,
        search_type: str | None = None,
        types: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        """``Pages.read`` with this call's server, token and limits: the prefetch reads on a page the
        request sent (its ``next`` links) by the same rules as a page fetched."""
        return await self._pages.read(first, url, key=key, search_type=search_type, types=types)

    def read_so_far(self, key: str) -> list[dict[str, Any]] | None:
        """``Pages.read_so_far``: what a key still being read at the deadline has read."""
        return self._pages.read_so_far(key)

    async def facts(self, *, fresh: bool = False) -> tuple[ServerFacts, bool]:
        """The server's facts, read once per call (``fresh``: once more, past the cache)."""
        if self._facts is None or (fresh and not self._refreshed):
            self._refreshed = fresh
            self._facts = asyncio.ensure_future(
                read_facts(self._http, self._base, self._versions, headers=self._headers, max_bytes=self._max_bytes)
            )
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
            self._pages.forget(key.name)
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
        queries = [f"Medication?_id={','.join(chunk)}&_count={_IDS_A_SEARCH}" for chunk in _chunks(ids)]
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
        """The resources of every query, or None when the server has none of their types. The
        first search to fail fails the key at once, its others cancelled and ended before it is
        told: none left running after it, and no later page of theirs read as the key's part."""
        tasks = [asyncio.ensure_future(self._search(query, facts, key)) for query in queries]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:  # a failure, or the call's own deadline cancelling this one: the rest end here
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if failed := next((t.exception() for t in tasks if not t.cancelled() and t.exception()), None):
            raise failed
        found = [task.result() for task in tasks]
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
        except FetchFailed as error:
            # Refused is a 4xx answer: a 5xx, a reset or a timeout says nothing of the include,
            # and asking again without it (remembered for an hour) went out past the deadline.
            if not included or error.status is None or not 400 <= error.status < 500:
                raise
        # A server that lists the include but refuses it (or no longer lists it: its statement is
        # remembered for an hour) is asked again without it, and not asked it again for a while.
        log.info("prefetch %s: fhirServer refused the search with _include: asked again without it", key)
        self._versions.put(self._base, replace(facts, includes=frozenset()))
        return await self._search(plain, facts, key)


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


def _chunks(ids: list[str]) -> list[list[str]]:
    """The ids, fifty at most a search and ``_ID_CHARS`` of ids at most (the URL's other parts
    are short): Epic's ids run to 66 characters and more, and fifty of 255 make a URL many
    servers refuse (8 KB)."""
    chunks: list[list[str]] = [[]]
    for id_ in ids:
        if chunks[-1] and (len(chunks[-1]) == _IDS_A_SEARCH or sum(map(len, chunks[-1])) + len(id_) > _ID_CHARS):
            chunks.append([])
        chunks[-1].append(id_)
    return [chunk for chunk in chunks if chunk]
