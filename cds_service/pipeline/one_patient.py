"""Every resource a call reads is the context's patient's.

A Patient record, a draft order or a history entry that names another patient is an EHR's
mix-up (a wrong prefetch, a stale draft): read into this patient's facts it would give the
clinician a wrong card (an age, a problem, a course that is not theirs). Refusing the whole call
would hide every card, critical ones too, behind an error the clinician never sees (a clinical
pharmacist's review). So what names another patient is left out, the rest is checked, and one
card says what was left out and that checks may be incomplete (``notices``). Neither the card
nor the log names either patient's id. A reference that names no one we can read (a display, a contained or
``urn:uuid:`` resource) is not a mismatch.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

DRAFTS = "context.draftOrders"


def own_drafts(drafts: list[dict[str, Any]], patient_id: str) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The drafts of the context's patient, and the field they were left out of, if any were."""
    own = f"Patient/{patient_id}"
    kept = [draft for draft in drafts if not _another(draft, patient_id, own)]
    return kept, (DRAFTS,) if len(kept) < len(drafts) else ()


def own_resources(found: list[dict[str, Any]], kinds: frozenset[str], patient_id: str) -> list[dict[str, Any]] | None:
    """A prefetch key's resources (as sent or fetched) without what names another patient, or
    None when none does. ``kinds``: the resource types among them. The common case, every
    subject ``{"reference": "Patient/<id>"}`` as is or absent (a Medication) and no Patient among
    them, is asked in C
    (``_all_own``: ~250 instructions an entry, against ~2,500 one by one) and makes no new list."""
    own = f"Patient/{patient_id}"
    if "Patient" not in kinds and _all_own(found, own):
        return None
    if not any(_another(resource, patient_id, own) for resource in found):
        return None
    return [resource for resource in found if not _another(resource, patient_id, own)]


def _all_own(resources: list[dict[str, Any]], own: str) -> bool:
    """Is every resource's ``subject`` exactly ``{"reference": own}``, or absent with no
    ``patient`` either (a Medication, which Epic includes beside its orders)? False says only:
    look one by one. Counted in C: a few passes of a list, not a call an entry."""
    try:
        subjects = list(map(dict.get, resources, repeat("subject")))
        owned = subjects.count({"reference": own})
        if owned == len(subjects):
            return True
        return owned + subjects.count(None) == len(subjects) and not any(map(dict.get, resources, repeat("patient")))
    except TypeError:  # not a dict
        return False


def _another(resource: dict[str, Any], patient_id: str, own: str) -> bool:
    """Does ``resource`` name another patient: a Patient of another id, or a ``subject``
    (``patient`` before R4) referring to another Patient, relative, absolute or versioned?"""
    if resource.get("resourceType") == "Patient":
        resource_id = resource.get("id")
        return type(resource_id) is str and resource_id != patient_id
    holder = resource.get("subject") or resource.get("patient")
    reference = holder.get("reference") if type(holder) is dict else None
    if type(reference) is not str or reference == own:
        return False
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return len(parts) >= 2 and parts[-2] == "Patient" and parts[-1] not in ("", patient_id)
