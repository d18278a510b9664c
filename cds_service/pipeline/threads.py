"""Where a hook call computes: on the event loop when it is small, in a worker thread when large.

A large call must not stop the process answering its probes and other calls (issue 16: /healthz
stalled 32 s behind one, 200 drafts). A small one computes where it is: three hops to a thread
and back cost more than its whole computation (issue 17).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar

from cds_service.fhir.json import bundle_entries
from cds_service.fhir.models import more_values_than

# Evaluations computing at once, per event loop: the work holds the GIL, so more threads add no
# speed; a limiter of their own leaves the shared thread pool (database calls, /readyz) free.
EVALUATION_THREADS = 4
_limiter: RunVar[CapacityLimiter] = RunVar("evaluation_limiter")
# A call computes on the event loop when three hops to a worker thread and back (about 1 ms, on
# two busy cores) would cost more than it blocks the loop for: a few drafts (the rules compare
# each draft under review with the others, so work grows with their square: 10 drafts, four
# rules firing on each, compute in about 8 ms) and a body of at most 1 MiB (history is read at
# about 9 µs an entry: 500 entries, 448 KB, in about 5 ms).
INLINE_DRAFTS = 10
INLINE_BODY_BYTES = 1024 * 1024
# The JSON values the drafts may hold, in all, for the call to compute on the loop: a draft's
# cost grows with its values, not its bytes (some 2 µs each to read and copy, and up to 60 µs
# each when the R4 model checks it for an update: 500 empty extensions, some 20 ms), and 0.9 MB
# of empty objects in one draft held the loop 0.5 s even unchecked. A real draft holds tens.
# Counting them costs 0.2 µs a value, as far as this bound (the sandbox's draft: 9 µs).
INLINE_DRAFT_VALUES = 500


def computes_inline(body: object, size: int) -> bool:
    """Is this call (its parsed body, and its size in bytes) small enough to compute on the loop?"""
    if size > INLINE_BODY_BYTES:
        return False
    context = body.get("context") if isinstance(body, dict) else None
    drafts = context.get("draftOrders") if isinstance(context, dict) else None
    entries = bundle_entries(drafts) if isinstance(drafts, dict) else drafts
    few = not isinstance(entries, list) or len(entries) <= INLINE_DRAFTS
    return few and not more_values_than(INLINE_DRAFT_VALUES, drafts)


async def off_loop(func: Callable[..., Any], /, *args: Any, inline: bool, **kwargs: Any) -> Any:
    """``func`` run in a worker thread (context variables, the hookInstance, go with it), or
    called here when ``inline``."""
    if inline:
        return func(*args, **kwargs)
    try:
        limiter = _limiter.get()
    except LookupError:
        limiter = CapacityLimiter(EVALUATION_THREADS)
        _limiter.set(limiter)
    return await to_thread.run_sync(partial(func, *args, **kwargs), limiter=limiter)
