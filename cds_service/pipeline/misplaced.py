"""A prefetch key's resources that another key's search answers: read where they belong.

An EHR may send its Condition search under ``medications`` (a prefetch template mapped to the
wrong key, two keys swapped), or include a resource of another type beside a search's own. Read
by their key alone, Conditions under ``medications`` were no conditions, and a medication
history holding only Conditions read as no medication: a red flag and a duplicate relaxant went
missing with no word. Each such resource is now read as its own key's too, and a key whose own
search's answer was not sent at all is read in part (the notice says so). Nothing else a search
may hold is touched: its Medications (``_include``), its OperationOutcome, a Provenance.
"""

from __future__ import annotations

import logging
from typing import Any

from cds_service.fhir.json import reference_of
from cds_service.protocol.services import PrefetchKey

log = logging.getLogger(__name__)


def read_where_they_belong(
    keys: tuple[PrefetchKey, ...], resources: dict[str, list[dict[str, Any]]], kinds: dict[str, frozenset[str]]
) -> tuple[dict[str, list[dict[str, Any]]], frozenset[str]]:
    """``resources`` (by key) with what a search key holds of another search key's types added to
    that key's (once: one there already under its id is not added again), and the keys whose own
    search's answer is not there: they hold another's and none of their own type, and none came
    under another key (swapped keys are read whole, and said by nobody). ``kinds``: the types
    each key's resources hold, as listed (most calls move nothing, and walk no list)."""
    searches = [key for key in keys if "?" in key.template and key.name in resources]
    owner = {kind: key.name for key in searches for kind in key.types}
    moved: dict[str, list[dict[str, Any]]] = {}
    astray = []
    for key in searches:
        wrong = (kinds.get(key.name, frozenset()) & owner.keys()) - set(key.types)
        if not wrong:
            continue
        for resource in resources[key.name]:
            if resource.get("resourceType") in wrong:
                moved.setdefault(owner[resource["resourceType"]], []).append(resource)
        if not kinds[key.name] & set(key.types):
            astray.append(key.name)
    if not moved:
        return resources, frozenset()
    resources = dict(resources)
    for name, found in moved.items():
        there = {reference_of(r) for r in resources[name] if r.get("id") is not None}
        added = [r for r in found if r.get("id") is None or reference_of(r) not in there]
        log.warning("prefetch %s: %d resource(s) of its search sent under another key: read", name, len(added))
        resources[name] = [*resources[name], *added]
    unanswered = frozenset(name for name in astray if name not in moved)
    for name in unanswered:
        log.warning("prefetch %s holds another search's answer and none of its own: read in part", name)
    return resources, unanswered
