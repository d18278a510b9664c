"""What each FHIR server said of itself (its /metadata), read and remembered so a server is asked
once an hour, not on every call."""

from __future__ import annotations

import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable

from cds_service.fhir.capabilities import UNKNOWN, ServerFacts, server_facts
from cds_service.security.outbound import Outbound, OutboundError, get_json

log = logging.getLogger(__name__)


class ServerVersions:
    """Each FHIR server's /metadata facts by server base, so a server is asked once an hour, not
    on every call: at most ``size`` servers (the least recently used goes), each for ``ttl``
    seconds (a server upgraded from DSTU2 to R4 is believed again within the hour)."""

    def __init__(self, size: int = 256, ttl: float = 3600.0, now: Callable[[], float] = time.monotonic) -> None:
        self._facts: OrderedDict[str, tuple[float, ServerFacts]] = OrderedDict()
        self._size, self._ttl, self._now = size, ttl, now

    def get(self, base: str) -> ServerFacts | None:
        held = self._facts.get(base)
        if held is None or self._now() - held[0] > self._ttl:
            self._facts.pop(base, None)
            return None
        self._facts.move_to_end(base)
        return held[1]

    def put(self, base: str, facts: ServerFacts) -> None:
        self._facts[base] = (self._now(), facts)
        self._facts.move_to_end(base)
        while len(self._facts) > self._size:
            self._facts.popitem(last=False)

    def forget(self, base: str) -> None:
        self._facts.pop(base, None)


# One cache per outbound client, that is per running app (deps.Runtime.http): it lives and
# goes with the app, and two apps (tests) never share what a server said.
_SERVER_VERSIONS: weakref.WeakKeyDictionary[Outbound, ServerVersions] = weakref.WeakKeyDictionary()


def versions_for(http: Outbound) -> ServerVersions:
    return _SERVER_VERSIONS.setdefault(http, ServerVersions())


async def read_facts(
    http: Outbound, base: str, versions: ServerVersions, *, headers: dict[str, str], max_bytes: int
) -> tuple[ServerFacts, bool]:
    """The server's facts and whether they came from the cache (then they may be stale)."""
    cached = versions.get(base)
    if cached is not None:
        return cached, True
    try:
        metadata = await get_json(http, f"{base}/metadata", headers=headers, max_bytes=max_bytes)
    except OutboundError as error:
        log.info("fhirServer /metadata could not be read (%s): every FHIR version's types are asked", error)
        if error.status is not None:  # it answered (404, too large): no need to ask on every call
            versions.put(base, UNKNOWN)
        return UNKNOWN, False
    facts = server_facts(metadata)
    if facts.version is None:
        log.info("fhirServer /metadata states no known FHIR version: every FHIR version's types are asked")
    versions.put(base, facts)
    return facts, False
