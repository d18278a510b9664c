"""A search's answers from the EHR's FHIR server, page by page: each answer checked for what a
search (or a read) answers, ``next`` links followed on that server only and at most so many
pages, and a search not read to its end remembered, so what it fed is said to be read in part.

Apart from ``fhir_client`` (which searches to ask, in which FHIR version) so that the prefetch
the request sent is read on, page by page, by the very same rules as the pages fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cds_service.errors import shown
from cds_service.fhir.capabilities import no_such_type
from cds_service.fhir.json import as_list, is_batch, resource_list, unread_entry
from cds_service.fhir.search import matches, short_of_total, total_of, unread_total
from cds_service.security.allowlist import on_server
from cds_service.security.outbound import Outbound, OutboundError, get_json

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"


class FetchFailed(Exception):
    """A fetch that failed; ``status`` the server's answer when it gave one (a 4xx refuses what
    was asked, where a 5xx, a reset or a timeout says nothing of it)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NoSuchType(FetchFailed):
    """The server says it has no such resource type: for a search, that is no data, unless its
    CapabilityStatement lists the type (``Listed``)."""


def next_link(bundle: dict[str, Any]) -> str | None:
    """The ``next`` link's URL. Relation names are case-insensitive (RFC 8288, which FHIR's link
    relations are): a server's "NEXT" was passed over, its later pages not read and not said."""
    for link in as_list(bundle.get("link")):  # a single link object is one link; a number, no link
        if not isinstance(link, dict) or not isinstance(link.get("url"), str):
            continue
        relation = link.get("relation")
        if isinstance(relation, str) and relation.lower() == "next":
            return link["url"]
    return None


def rest_unread(page: dict[str, Any], types: tuple[str, ...]) -> str | None:
    """Why a page read alone (a prefetch with no ``fhirServer`` to read on from) is not the whole
    search, in a log's words: a ``next`` link, or a ``total`` counting more matches than the page
    holds, of ``types``: every key's, as a resource sent under another key is read where it
    belongs (``pipeline.misplaced``). None when it is all of it."""
    if page.get("resourceType") != "Bundle":
        return None
    if next_link(page) is not None:
        return "has more pages and no fhirServer to read them"
    if (total := total_of(page)) is not None and short_of_total(total, matches(page, types)):
        return "holds fewer matches than its Bundle.total counts, and no next link"
    return None


@dataclass(eq=False)
class _Search:
    """One search of a key, as far as it has read: ``resources`` None until its first page is in;
    its pages, and the most any page's ``total`` said the search has."""

    resources: list[dict[str, Any]] | None = None
    pages: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None
    types: tuple[str, ...] = ()  # what it searches, when known: its matches where no mode says

    def add(self, page: dict[str, Any]) -> None:
        """A page read whole or not at all (``_resources`` fails a page of what is no resource), its
        matches counted; of the pages' ``total``s the largest is kept: a search cut is the worse error."""
        found = _resources(page)
        if self.resources is None:
            self.resources = found
        else:
            self.resources.extend(found)
        if page.get("resourceType") == "Bundle":  # a read's resource (Patient/{id}) counts nothing
            self.pages.append(page)
            if (total := total_of(page)) is not None and (self.total is None or total > self.total):
                self.total = total

    @property
    def cut(self) -> bool:
        """Whether its ``total`` counts more matches than its pages held: counted only when a page
        says a total, as most searches say none (a history's thousands of entries walked for nothing
        cost 40-90 µs a 500-entry page)."""
        if self.total is None:
            return False
        return short_of_total(self.total, sum(matches(page, self.types) for page in self.pages))


class Pages:
    """One call's reading of one server's answers, with that call's headers and limits."""

    def __init__(
        self,
        http: Outbound,
        base: str,
        headers: dict[str, str],
        *,
        max_pages: int,
        max_bytes: int,
        on_failure: Callable[[str], None],
    ) -> None:
        self._http = http
        self._base = base
        self._headers = headers
        self._max_pages = max_pages
        self._max_bytes = max_bytes
        # A next page that fails is a fetch that failed (the metrics), its pages before it kept.
        self._on_failure = on_failure
        # The keys of this call read in part (a page limit, a next link off the server or failing).
        self.partial: set[str] = set()
        # Each key's searches, as far as each has read (``read_so_far``).
        self._searches: dict[str, list[_Search]] = {}

    async def _get(self, url: str, search_type: str | None = None) -> dict[str, Any]:
        try:
            body = await get_json(self._http, url, headers=self._headers, max_bytes=self._max_bytes)
        except OutboundError as error:
            if search_type and no_such_type(error.status, error.outcome, search_type):
                raise NoSuchType(f"fhirServer answered {error} saying it has no {search_type}") from None
            raise FetchFailed(f"fetching it from fhirServer failed: {error}", status=error.status) from None
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

    async def read(
        self,
        first: dict[str, Any] | None,
        url: str | None = None,
        *,
        key: str,
        search_type: str | None = None,
        types: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        """Resources of a search, from ``first`` (a page already in hand) or ``url``, following ``next``;
        a search not read to its end puts ``key`` in ``partial``. ``types``: its matches where no
        mode says, when not ``search_type`` (a page sent: every key's, as ``rest_unread`` reads one).

        ``next`` links are followed only on this server: a prefetch cannot steer us elsewhere.
        (HAPI's page links are the base itself with a query, ``{base}?_getpages=...``.)
        The search is held in ``key``'s reading as it goes, so that a key cut off at the call's
        deadline on a later page keeps what it read (``read_so_far``); one that fails is no part of it.
        """
        search = _Search(types=types or ((search_type,) if search_type else ()))
        self._searches.setdefault(key, []).append(search)
        try:
            # A query asked without a search type is a read (``FhirClient._search``).
            page = (
                first
                if first is not None
                else await self._answer(f"{self._base}/{url}", search_type, read=search_type is None)
            )
            search.add(page)
            if await self._read_on(page, search, key) and search.cut:
                # Read to the last page its links lead to: the matches left out are as a page not read.
                log.warning("a fhirServer search holds fewer matches than its Bundle.total counts: the rest not read")
                self.partial.add(key)
        except Exception:
            if search in (searches := self._searches.get(key, [])):
                searches.remove(search)
            raise
        return search.resources or []

    async def _read_on(self, page: dict[str, Any], search: _Search, key: str) -> bool:
        """The pages after ``page``, into ``search`` a whole page at a time (what a cut-off key
        keeps is never half a page); a next page that fails ends the search, read in part.
        Whether it was read to the last page its links lead to (its ``total`` then tells the rest)."""
        for _ in range(self._max_pages - 1):
            link = next_link(page) if page.get("resourceType") == "Bundle" else None
            if link is None:
                return True
            if not on_server(link, self._base):  # the link itself is not logged: it names the patient
                log.warning("a next-page link of fhirServer points off it: not followed, the rest not read")
                self.partial.add(key)
                return False
            try:
                page = await self._answer(link, None)
                search.add(page)
            except FetchFailed as error:  # the pages read stand: the history read in part, as past the limit
                log.warning("a next page of a fhirServer search could not be read: the rest not read: %s", error)
                self._on_failure(key)
                self.partial.add(key)
                return False
        if page.get("resourceType") == "Bundle" and next_link(page) is not None:
            log.warning(
                "a fhirServer search has over %d pages (CDS_FHIR_MAX_PAGES): the rest not read", self._max_pages
            )
            self.partial.add(key)
            return False
        return True

    def read_so_far(self, key: str) -> list[dict[str, Any]] | None:
        """What ``key``'s searches have read by now, when each has its first page in: a key cut off
        at the deadline on a later page is read in part, as one whose later page failed (it was
        a 412, page 1 and its critical cards lost). None while a first page is still awaited (or
        no search was asked yet): what the key holds is not known, and it stays not had."""
        searches = self._searches.get(key)
        if not searches or any(search.resources is None for search in searches):
            return None
        return [resource for search in searches for resource in search.resources or ()]

    def forget(self, key: str) -> None:
        """``key`` asked anew (its server's statement read again): what its first asking read is
        no part of the answer, and searches of it still running are not counted twice."""
        self._searches.pop(key, None)


def _resources(page: dict[str, Any]) -> list[dict[str, Any]]:
    """A page's resources; one holding an entry of no resource fails the fetch (read as no data,
    it would hide what it stood for from the checks), as one whose ``total`` is no count does
    (read as absent, it would hide that the search was cut), as a prefetch so sent is a 400."""
    listed = resource_list(page)
    bundle = page.get("resourceType") == "Bundle"
    if bundle and (unread := unread_entry(page, listed) or unread_total(page)) is not None:
        raise FetchFailed(f"fetching it from fhirServer failed: its {unread[0]} {unread[1]}")
    return listed[0]
