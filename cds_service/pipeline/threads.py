"""Where a hook call computes: on the event loop when it is small, in a worker thread when large.

A large call must not stop the process answering its probes and other calls (issue 16: /healthz
stalled 32 s behind one). A small one computes where it is: three hops to a thread and back cost
more than its whole computation (issue 17).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar

# Evaluations computing at once, per event loop: the work holds the GIL, so more threads add no
# speed; a limiter of their own leaves the shared thread pool (database calls, /readyz) free.
EVALUATION_THREADS = 4
_limiter: RunVar[CapacityLimiter] = RunVar("evaluation_limiter")
# A body up to this size is a small call: the sandbox's order (3 KB) computes in about 0.3 ms, the
# worst 16 KB one (15 drafts under review, four rules firing on each) in about 12 ms, which the event
# loop can afford; beyond it the computation goes to a worker thread.
INLINE_BODY_BYTES = 16 * 1024


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
