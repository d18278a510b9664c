"""Completing the prefetch: use what the client sent, fetch what it did not.

Per key (CDS Hooks 2.0 §Prefetch): present → use it (following its ``next`` links); ``null``
→ no data; missing, or an OperationOutcome (the client's own fetch failed) → fetch it from
``fhirServer``. All fetches of a call run concurrently under one deadline, so a slow FHIR
server costs at most that deadline. Keys that still have no data are reported as
unavailable, each with the reason; whether that means 412 or a degraded card is the service definition's call.
Each key's resources that name another patient are left out as soon as the key is read
(``one_patient``), and the field named, so that the cards say so.

A key is fetched in the server's own FHIR version (a DSTU2 server has ``MedicationOrder``, not
``MedicationRequest``) by ``pipeline.fhir_client``. The Medications that orders name only by
reference, and that came with neither the request nor the search, are read by id within the same
deadline: the history's here, the drafts' (``draft_medications``) before the rules are chosen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cds_service.errors import InvalidRequest
from cds_service.facts.medications import MedicationIndex
from cds_service.fhir.json import failed_outcome, kinds_of, resource_list, unread_entry
from cds_service.pipeline.fhir_client import FhirClient, Unfetchable
from cds_service.pipeline.fhir_pages import FetchFailed, next_link, rest_unread
from cds_service.pipeline.misplaced import read_where_they_belong
from cds_service.pipeline.one_patient import own_resources
from cds_service.protocol.services import PrefetchKey, read_prefetch

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class PatientData:
    """What the prefetch (completed by fetching) holds, per prefetch key."""

    resources: dict[str, list[dict[str, Any]]]
    # Keys with no data, each with why (said in the 412 answer when the key is required).
    unavailable: dict[str, str] = field(default_factory=dict)
    # Keys read in part: more pages than read (CDS_FHIR_MAX_PAGES, a next link off the server,
    # failing or late, or none to read them from; a total its matches fall short of). The cards
    # then say checks may be incomplete.
    partial: frozenset[str] = frozenset()
    # Unavailable keys that failed (a fetch, or the client's own: an OperationOutcome sent), not
    # merely left out of a request with no fhirServer: the clinician is told of a failure.
    failed: frozenset[str] = frozenset()
    # Fields something naming another patient was left out of (``one_patient``).
    left_out: tuple[str, ...] = ()
    # Keys read from fhirServer (all or some of their pages): what the request did not bring.
    fetched: frozenset[str] = frozenset()
    # Medications read from fhirServer by id: those the keys' orders name only by reference.
    medications: tuple[dict[str, Any], ...] = ()

    @property
    def not_read(self) -> frozenset[str]:
        """The keys the partial-history notice names: those read in part, and a patient record whose
        read failed (one not sent is said by its own reason, ``NO_PATIENT``). The service orders
        (``imaging``) not had are said by the cards that read them (the MRI card's "could not be checked", the
        heat-and-exercise card's), where it matters: in the notice, every call of a site that
        sends none warned of it (the clinical review)."""
        return self.partial | (self.failed & {"patient"})


@dataclass
class _Completion:
    """The keys read so far, and what was said of them."""

    patient_id: str
    keys: tuple[PrefetchKey, ...] = ()
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    kinds: dict[str, frozenset[str]] = field(default_factory=dict)  # the types each key's resources hold
    unavailable: dict[str, str] = field(default_factory=dict)
    partial: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    left_out: list[str] = field(default_factory=list)
    fetched: set[str] = field(default_factory=set)
    medications: list[dict[str, Any]] = field(default_factory=list)
    outcomes: set[str] = field(default_factory=set)  # sent as an OperationOutcome: the EHR's fetch failed
    # The first page of each Bundle sent whose next pages are read: read alone if they cannot be.
    sent_pages: dict[str, tuple[list[dict[str, Any]], frozenset[str]]] = field(default_factory=dict)

    def cannot_have(self, name: str, why: str) -> None:
        """Why a key cannot be had, as a 412 says it: what the request held, then ``why`` not fetched."""
        sent = "an OperationOutcome in the request (the EHR could not prefetch it)" if name in self.outcomes else None
        self.unavailable[name] = f"{sent or 'not in the request'}, and {why}"

    def take(self, name: str, found: list[dict[str, Any]], kinds: frozenset[str]) -> None:
        """A key's resources, checked as soon as they are listed, while a history just parsed is
        still in the cache (a pass over it later costs a cache miss or two an entry): a search's
        own OperationOutcome saying it failed makes the key partial; what names another patient
        is left out."""
        if failed_outcome(found, kinds):
            log.warning("prefetch %s: the search's own OperationOutcome says it failed: read in part", name)
            self.partial.add(name)
        kept = own_resources(found, kinds, self.patient_id)
        if kept is not None:
            found = kept
            self.left_out.append(f"prefetch.{name}")
        self.resources[name], self.kinds[name] = found, kinds

    def data(self) -> PatientData:
        for name, reason in self.unavailable.items():
            log.warning("prefetch %s unavailable: %s", name, reason)
        resources, unanswered = read_where_they_belong(self.keys, self.resources, self.kinds)
        unavailable, partial, failed = self.unavailable, frozenset(self.partial) | unanswered, frozenset(self.failed)
        left_out, fetched = tuple(self.left_out), frozenset(self.fetched)
        return PatientData(resources, unavailable, partial, failed, left_out, fetched, tuple(self.medications))


async def complete_prefetch(
    keys: tuple[PrefetchKey, ...],
    sent: dict[str, Any],
    patient_id: str,
    client: FhirClient | Unfetchable | None,
    *,
    deadline: float,
    medications: MedicationIndex | None = None,
) -> PatientData:
    """``keys`` completed from what the client ``sent`` (only those keys are read), fetching
    the rest through ``client``; raises ``InvalidRequest`` for a key of ours that holds no resource.
    ``medications``: those the request brought, which need not be fetched."""
    prefetch = read_prefetch(keys, sent)
    done = _Completion(patient_id, keys)
    jobs: dict[str, Awaitable[list[dict[str, Any]]]] = {}
    types = tuple(t for k in keys for t in k.types)  # a page's matches: a misplaced one is read where it belongs
    for key in keys:
        if key.name in prefetch and prefetch[key.name] is None:
            done.resources[key.name] = []
            continue
        value = prefetch.get(key.name)
        # Sent, of a shape or entries an optional key cannot read: fetched as not sent, said as not read.
        unread = sent.get(key.name) is not None and key.name not in prefetch
        listed = resource_list(value) if value is not None else ([], frozenset())
        if value is not None and not _readable(key, value, listed):
            value, unread = None, True
        if value is not None and value.get("resourceType") != "OperationOutcome":
            more = value.get("resourceType") == "Bundle" and next_link(value) is not None
            if more and isinstance(client, FhirClient):
                jobs[key.name], done.sent_pages[key.name] = client.pages(value, key=key.name, types=types), listed
            else:
                done.take(key.name, *listed)
                if (rest := rest_unread(value, types)) is not None:
                    log.warning("prefetch %s %s: the rest not read", key.name, rest)
                    done.partial.add(key.name)
            continue
        if value is not None:  # not fetched: why is said with the key unavailable (``cannot_have``)
            fetched = "fetching it" if isinstance(client, FhirClient) else "read as not sent; it cannot be fetched"
            log.info("prefetch %s holds an OperationOutcome: %s", key.name, fetched)
            done.outcomes.add(key.name)
        if isinstance(client, FhirClient):
            jobs[key.name] = client.fetch(key, patient_id)
        else:
            done.cannot_have(key.name, client.reason if client else "the request has no fhirServer")
            if value is not None or unread:
                done.failed.add(key.name)

    if isinstance(client, FhirClient):  # jobs come only with a client to run them
        started = asyncio.get_running_loop().time()
        if jobs:
            await _run(jobs, client, deadline, done)
        left = deadline - (asyncio.get_running_loop().time() - started)
        await _read_medications(keys, client, left, done, medications or MedicationIndex())
        done.partial |= client.partial & done.resources.keys()
    return done.data()


def _readable(key: PrefetchKey, value: dict[str, Any], listed: tuple[list[Any], frozenset[str]]) -> bool:
    """Whether every entry of a Bundle sent holds a resource of a FHIR type (``listed``: what
    ``resource_list`` found): a key the service needs that holds anything else is a 400 naming where
    (read as no data it hid a hepatitis C from the hepatic card, with no word); an optional key's
    is read as not sent, as ``read_prefetch`` reads one of the wrong shape."""
    unread = unread_entry(value, listed) if value.get("resourceType") == "Bundle" else None
    if unread is None:
        return True
    field = f"prefetch.{key.name}.{unread[0]}"
    if key.required:
        raise InvalidRequest(f"{field}: {unread[1]}", fields=[field])
    log.warning("%s: not a FHIR resource: prefetch %s read as not sent", field, key.name)
    return False


async def _read_medications(
    keys: tuple[PrefetchKey, ...], client: FhirClient, deadline: float, done: _Completion, held: MedicationIndex
) -> None:
    """The Medications that the keys' orders name only by reference (no ``display``) and that
    came with neither the request nor the search, read by id within what is left of the
    deadline: such an order names no drug, and a duplicate therapy on it went unseen. Not read,
    the key is read in part (the cards say so)."""
    wanted = {
        key.name: ids
        for key in keys
        if key.includes and key.name in done.resources and (ids := held.unnamed(done.resources[key.name], client.base))
    }
    if not wanted:
        return
    found = await asyncio.gather(
        *(_within(deadline, client.medications(list(ids), name)) for name, ids in wanted.items())
    )
    for name, medications in zip(wanted, found, strict=True):
        if medications is None:
            log.warning("prefetch %s: the Medications its orders name were not read: read in part", name)
            client.on_failure(name)
            done.partial.add(name)
        else:
            done.medications += medications


async def draft_medications(
    client: FhirClient, ids: tuple[str, ...], deadline: float
) -> tuple[list[dict[str, Any]], bool]:
    """The Medications that draft orders name only by reference and the request did not bring,
    and whether they were all read: those not read (in time, or past the page limit) leave their
    drafts naming no drug, unchecked (a notice says so)."""
    found = await _within(deadline, client.medications(list(ids), "draftOrders"))
    if found is None:
        client.on_failure("draftOrders")
    read = found is not None and "draftOrders" not in client.partial
    if not read:
        log.warning("draftOrders: the Medications its orders name were not all read: those orders not checked")
    return found or [], read


async def _within(deadline: float, reading: Awaitable[_T]) -> _T | None:
    """What ``reading`` answers by the deadline; None when it did not answer in time, or failed
    in a way of its own (only its type logged: what a server sends is not logged)."""
    try:
        async with asyncio.timeout(max(deadline, 0)):
            return await reading
    except TimeoutError:
        log.warning("the Medications orders name were not read: not done in %g s", max(deadline, 0))
    except Exception as error:  # a drug unread is said: it is no reason for a 500
        log.warning("the Medications orders name were not read: %s", type(error).__name__)
    return None


async def _run(
    jobs: dict[str, Awaitable[list[dict[str, Any]]]], client: FhirClient, deadline: float, done: _Completion
) -> None:
    """The fetches, all at once under one deadline: each key's resources, or why it is
    unavailable (a failed fetch, or a first page late); of a key cut off on a later page, the
    pages read by then, said read in part as when a later page fails."""
    tasks = {name: asyncio.ensure_future(job) for name, job in jobs.items()}
    try:
        finished, pending = await asyncio.wait(tasks.values(), timeout=deadline)
    except asyncio.CancelledError:  # the read dropped (no rule reads it) or the call cancelled
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)  # their failures said by nobody
        raise
    for name, task in tasks.items():
        found: list[dict[str, Any]] | None = None
        if task in finished and task.exception() is None:
            found = task.result()
        elif task in pending and (found := client.read_so_far(name)) is not None:
            # Its first pages in, a later one late: a 412 threw them and their critical cards away.
            client.on_failure(name)
            log.warning("prefetch %s: a next page was not read in %g s: the rest not read", name, deadline)
            done.partial.add(name)
        else:
            client.on_failure(name)
            # What the network answered (refused, a redirect, not JSON, late) goes to the log only:
            # in a 412 it would let any caller map the ports and hosts the service can reach.
            error = task.exception() if task in finished else TimeoutError(f"not done in {deadline:g} s")
            detail = error if isinstance(error, FetchFailed | TimeoutError) else type(error).__name__
            log.warning("prefetch %s: fetching it failed: %s", name, detail)
            if name in done.sent_pages:  # its next pages failed otherwise: the page sent is read, in part
                done.take(name, *done.sent_pages[name])
                done.partial.add(name)
            else:
                done.cannot_have(name, "fetching it from fhirServer failed (the service log says why)")
                done.failed.add(name)
            continue
        done.take(name, found, kinds_of(found))
        done.fetched.add(name)
    for task in pending:
        # Cut off (its pages read taken above), its end retrieved when it ends, not awaited: the
        # call does not wait on a slow server. One whose own timeout fires with the deadline ends
        # in FetchFailed, not cancelled (aiohttp turns the cancellation into its
        # TimeoutError), and unretrieved asyncio logged it as an ERROR with its traceback.
        task.add_done_callback(_retrieved)
        task.cancel()


def _retrieved(task: asyncio.Future[Any]) -> None:
    """A fetch no one awaits any more: its end taken, unsaid (the key is said failed already)."""
    if not task.cancelled():
        task.exception()


def unavailable(data: PatientData, missing: list[str]) -> str:
    """The 412's words: the keys that cannot be had, grouped by why."""
    keys: dict[str, list[str]] = {}
    for name in missing:
        keys.setdefault(data.unavailable[name], []).append(f"prefetch.{name}")
    return "; ".join(f"{', '.join(fields)}: {why}" for why, fields in keys.items())
