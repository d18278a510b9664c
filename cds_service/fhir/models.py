"""Per-resource FHIR parsing with the R4B models (R4-compatible), tolerant of real clients.

Real clients send R4 that the models reject as a whole: the CDS Hooks sandbox puts a single
object where R4 has an array (``category``, ``reasonCode``). ``normalise`` wraps such objects
by reading the model's own field types, so every list field of every element is covered
without a hand-kept list. Validation by the model is kept for the one place that needs it (a
draft sent back in an update suggestion, ``problems``): what fails it is still read for its
facts, tolerantly, but nothing is built from it that would send the broken resource back.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import typing
from functools import cache
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

_Fields = dict[str, tuple[bool, type[BaseModel] | None]]


@cache
def _fields(model: type[BaseModel]) -> _Fields:
    """Each JSON key of ``model`` → (is it a list, the element model for nested objects)."""
    fields: _Fields = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        is_list = False
        inner: Any = annotation
        for arg in typing.get_args(annotation) or (annotation,):
            if typing.get_origin(arg) is list:
                is_list, inner = True, typing.get_args(arg)[0]
                break
            if arg is not type(None):
                inner = arg
        get_model = getattr(inner, "get_model_klass", None)
        fields[field.alias or name] = (is_list, get_model() if get_model else None)
    return fields


def normalise(raw: dict[str, Any], model: type[BaseModel], *, known_only: bool = False) -> dict[str, Any]:
    """A copy of ``raw`` with single objects wrapped where ``model`` expects arrays, and without
    ``null`` members (FHIR JSON has none; echoing them in a suggestion would break CDS Hooks).

    ``known_only`` also drops members ``model`` does not define, at every level: what an older
    FHIR version has and R4 lacks (R4 input keeps them, so the models reject what is wrong)."""
    fields = _fields(model)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None or (known_only and key not in fields and key != "resourceType"):
            continue
        is_list, element = fields.get(key, (False, None))
        if is_list and isinstance(value, dict):
            value = [value]
        if element is not None and element is not Resource:
            if isinstance(value, list):
                value = [normalise(v, element, known_only=known_only) if isinstance(v, dict) else v for v in value]
            elif isinstance(value, dict):
                value = normalise(value, element, known_only=known_only)
        out[key] = value
    return out


def without_nulls(value: Any) -> Any:
    """A copy without ``null`` members: FHIR JSON has none, and CDS Hooks forbids them in a response."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value if v is not None]
    return value


def model_for(resource_type: str) -> type[BaseModel]:
    return get_fhir_model_class(resource_type)


# Drafts whose soundness is kept (``problems``): a few hundred kB at most.
CHECKED_DRAFTS = 4096
# The most JSON values (objects, arrays and scalars, the draft itself one) a draft may hold for
# the model to check it. The model costs 3–60 µs a value (an Extension, with its fifty value[x]
# fields, the dearest): a draft of 300,000 empty extensions, 0.9 MB, held the event loop 11–14 s
# and 670 MB. Real drafts hold tens (98 the most, in fixtures/ehr and fixtures/real-world);
# one over this is not checked, and no update is offered for it (``TOO_LARGE``). Under it, the
# model's dearest draft (1,000 empty extensions) costs some 35 ms.
MODEL_VALUES = 1000
TOO_LARGE = f"over {MODEL_VALUES:,} JSON values: not checked by the R4 model"
# The most JSON values the model checks in one call's drafts, all drafts together: 200 drafts of
# 980 empty extensions each, every one just under ``MODEL_VALUES``, cost 5.5-6 s of CPU (35 ms a
# draft). A real draft holds under 100 values (98 the most, in fixtures/ehr and fixtures/real-world)
# and a call a handful of drafts: fifty real drafts still fit, and the model's dearest drafts cost
# some 175 ms a call at most. A draft past it is not checked (``OVER_BUDGET``), as one over
# ``MODEL_VALUES``; one the call has had checked already costs nothing more.
CALL_MODEL_VALUES = 5000
OVER_BUDGET = f"the call's drafts over {CALL_MODEL_VALUES:,} JSON values in all: not checked by the R4 model"
# The rejected fields a log line names: a draft of 2,000 unknown keys was a 109 kB line.
SHOWN_PROBLEMS = 5
# Each draft's JSON values (as ``counted_values`` counts them) and its ``problems``, by its digest:
# a draft asked again is neither counted nor checked again.
_checked: dict[bytes, tuple[int, str | None]] = {}
_checked_lock = threading.Lock()  # large calls compute in worker threads


class ModelBudget:
    """The JSON values one call may still have the model check (``CALL_MODEL_VALUES``): each
    draft's per-draft limit alone let a call of many drafts just under it hold a worker for
    seconds. Charged whether or not the answer was kept from an earlier call, so that a call's
    cards do not depend on what the process saw before."""

    def __init__(self, values: int = CALL_MODEL_VALUES) -> None:
        self._left = values
        self._charged: set[bytes] = set()

    def takes(self, values: int, content: bytes | None) -> bool:
        """Whether the model may check this draft of ``values`` JSON values (``counted_values``;
        ``content``: its digest, None when it has none), charging it them: a draft the call asks
        again of (another card's update) is charged once; one over ``MODEL_VALUES`` is not
        checked and costs nothing."""
        if content is not None and content in self._charged:
            return True
        if values > MODEL_VALUES:
            return True
        if values > self._left:
            return False
        self._left -= values
        if content is not None:
            self._charged.add(content)
        return True


def read(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The normalised JSON of ``raw``; None (logged) for a resource type the models do not
    know, which nothing can be read from. Not validated: the facts are read field by field
    with type checks, and only a draft sent back in an update needs the model (``problems``).

    The JSON is kept because suggestions send back the client's own draft, changed only
    where the card says, rather than a re-serialisation of the model.
    """
    resource_type = raw.get("resourceType")
    try:
        model = model_for(str(resource_type))
    except (KeyError, ValueError, TypeError):
        log.warning("skipping a draft of unknown resourceType")  # not its type nor id: they may hold PHI
        return None
    return normalise(raw, model)


def problems(normalised: dict[str, Any], budget: ModelBudget | None = None) -> str | None:
    """Why the R4B model rejects a resource read by ``read`` (field paths, never the data), or
    ``TOO_LARGE`` (or, past the call's ``budget``, ``OVER_BUDGET``) if it is not asked; None
    when it is sound. Real clients send drafts without a
    ``subject`` or an ``intent``: they are still read for their facts, but not echoed back.

    The model costs ~0.3 ms for a small draft, more than the rest of a small call; clients send
    the same draft again and again (order-select on each selection, then order-sign), so the
    answer is kept per process for the draft's exact JSON (a digest of it: no data is kept), with
    its count of values: counted once, the budget charged from the count kept."""
    try:
        content: bytes | None = hashlib.blake2b(
            orjson.dumps(normalised, option=orjson.OPT_SORT_KEYS), digest_size=16
        ).digest()
    except TypeError:  # what orjson cannot write (an integer over 64 bits) is checked every time
        content = None
    kept = None
    if content is not None:
        with _checked_lock:
            kept = _checked.get(content)
    values = kept[0] if kept is not None else counted_values(MODEL_VALUES, normalised)
    if budget is not None and not budget.takes(values, content):
        return OVER_BUDGET
    if kept is not None:
        return kept[1]
    found = _validate(normalised, values)
    if content is not None:
        with _checked_lock:
            if len(_checked) >= CHECKED_DRAFTS:
                del _checked[next(iter(_checked))]  # the oldest
            _checked[content] = (values, found)
    return found


def _validate(normalised: dict[str, Any], values: int) -> str | None:
    """The model's answer for a draft of ``values`` JSON values (``counted_values``)."""
    if values > MODEL_VALUES:
        return TOO_LARGE
    try:
        model = model_for(str(normalised.get("resourceType")))
    except (KeyError, ValueError, TypeError):
        return "resourceType: unknown"
    try:
        model.model_validate(normalised)
    except (KeyError, TypeError) as error:  # the models' own lookups: a contained resource's type
        return f"a resource within it: its type unknown ({type(error).__name__})"
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=False)
        found = list(dict.fromkeys(_problem(e["loc"], e["type"], e["msg"]) for e in errors))  # 2,000 keys: one
        more = f"; and {len(found) - SHOWN_PROBLEMS} more" if len(found) > SHOWN_PROBLEMS else ""
        return "; ".join(found[:SHOWN_PROBLEMS]) + more
    return None


def more_values_than(limit: int, value: Any) -> bool:
    """Does the JSON ``value`` hold more than ``limit`` values? Every hook call asks it
    (``pipeline.threads``)."""
    return counted_values(limit, value) > limit


def counted_values(limit: int, value: Any) -> int:
    """The JSON values ``value`` holds, counted as far as ``limit`` only (past it, some number
    over it): the count costs what a draft under it does, however large the draft (a container's
    members are counted before any is walked). 0.2 µs a value, where ``isinstance`` and a
    conditional expression took twice that."""
    count = 1
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            item = item.values()
        elif kind is not list:
            continue
        count += len(item)
        if count > limit:
            return count
        stack.extend(item)
    return count


def _problem(location: tuple[str | int, ...], kind: str, message: str) -> str:
    """One rejected field as the log says it. A key R4 does not define is the client's own
    words (a key may hold a name, or a line break that forges a log line): said by where it
    stands, never by itself; the model's own field names are the rest of the path. The pydantic
    messages quote no input (``include_input=False``), but a validator's own may."""
    if kind == "extra_forbidden":
        return f"{'.'.join(map(str, location[:-1])) or 'the resource'}: a field R4 does not define"
    if kind in ("value_error", "assertion_error"):  # the models' own validators may quote the value
        message = "a value R4 does not accept"
    return f"{'.'.join(map(str, location))}: {message}"
