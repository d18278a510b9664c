"""Each stage of a hook call in instructions, in this checkout and at an earlier commit: the
before and after of docs/performance.md, in a figure the machine's hour does not move.

The other commit is written out of git into a temporary directory (``git archive``). In each
tree, one process per stage calls that stage's own function on a scenario's parsed request, N
times after a warm-up of every stage, under valgrind (cachegrind without cache simulation, one
hash seed, as ``bench/instructions.py``), less a process that only warms up: the body's parse
(and its freeing), the envelope and drafts with the rules that apply, the prefetch's completion,
the patient's facts and the rules, the cards, the response JSON. The stages are the pipeline's
own functions, asked for by name: a commit whose pipeline names them otherwise stops the run
with the name it lacks. Both trees are sent this checkout's requests (``bench/scenarios.py``)
and run on this virtual environment's packages: a commit that needs other versions of them fails,
or measures them too.

    python bench/then_and_now.py [--rev 1de3968] [--scenario "500 prefetch entries"] [--calls 40]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Only the standard library: a measured process puts its own tree first on sys.path after this,
# and must import nothing of cds_service before.
from bench.revision import describe, short  # noqa: E402
from bench.valgrind import instructions as count  # noqa: E402
from tools.fixture_day import TODAY  # noqa: E402

START_OF_ISSUE_17 = "1de3968"  # the wrk harness over the code as it was before issue 17's changes
# Keyed as ``bench/timed.py`` keys the stages it times in the server.
STAGES = {
    "parse": "body: JSON parse and shape check (and freeing it)",
    "drafts": "envelope, context and drafts read; rules that apply",
    "prefetch": "prefetch completed and checked",
    "facts": "patient facts and rules",
    "cards": "cards: policy, suggestions, rendering",
    "json": "response JSON",
}
# The stages' names at commits before they were public (``_read``, …), asked for there.
_EARLIER = {"read_request": "_read", "assess": "_assess", "answer": "_answer"}
WARM_UP_ONLY = "none"
WARMUP_CALLS = 20
CALLS = {"500 prefetch entries": 40}  # a stage's calls under valgrind, where not the default
DEFAULT_CALLS = 300


def _requests() -> dict[str, Any]:
    """This checkout's ``bench/scenarios.py`` requests, loaded from its file: the measured tree,
    first on ``sys.path``, has a ``bench`` package of its own."""
    spec = importlib.util.spec_from_file_location("bench_scenarios", ROOT / "bench" / "scenarios.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    requests: dict[str, Any] = module.scenarios("http://127.0.0.1:1/fhir")
    return requests


def _scenario(name: str) -> bytes:
    return orjson.dumps(_requests()[name])


def drive(tree: Path, scenario: str, stage: str, calls: int) -> None:
    """In ``tree``'s code: every stage warmed up, then ``stage`` called ``calls`` times."""
    if stage != WARM_UP_ONLY and stage not in STAGES:
        raise SystemExit(f"no stage {stage!r}: one of {', '.join(STAGES)}")
    sys.path.insert(0, str(tree))  # before any import of cds_service: the tree's, not the installed one
    raw = _scenario(scenario)
    from cds_service.settings import Settings

    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="cds-then-now-") as data_dir:
        _measure(stage, calls, Settings(data_dir=Path(data_dir), auth_mode="off"), raw)


def _measure(stage: str, calls: int, settings: Any, raw: bytes) -> None:
    import orjson

    from cds_service.clock import at_noon
    from cds_service.deps import build_runtime
    from cds_service.pipeline import evaluate as pipeline
    from cds_service.pipeline.knowledge import load_knowledge
    from cds_service.pipeline.prefetch import complete_prefetch
    from cds_service.protocol.body import parse_body
    from cds_service.protocol.services import SERVICES

    clock = at_noon(TODAY)
    knowledge = load_knowledge(settings)
    store = build_runtime(settings, knowledge, clock=clock).store
    service = next(s for s in SERVICES.values() if s.hook == "order-select")
    loop, ids = asyncio.new_event_loop(), iter(range(10**9))
    state: dict[str, Any] = {}

    def completed() -> Any:
        sent = state["body"].get("prefetch") or {}
        patient_id = state["call"].context.patientId
        return loop.run_until_complete(complete_prefetch(service.prefetch, sent, patient_id, None, deadline=1))

    # The stages, named without the underscore since the forty-fourth pass; found once, not per call.
    read_request, assess, answer = (getattr(pipeline, n, None) or getattr(pipeline, old) for n, old in _EARLIER.items())
    # The clock's instant since the forty-fourth pass (a washout counted in hours), its day before;
    # the service, which it never read, given to the commits whose ``assess`` still takes it.
    parameters = inspect.signature(assess).parameters
    moment = clock() if "now" in parameters else clock().date()
    given = (service,) if "service" in parameters else ()
    steps: dict[str, Callable[[], Any]] = {
        "parse": lambda: parse_body(raw, settings.body_limits),
        "drafts": lambda: read_request(service, state["body"], knowledge, 200),
        "prefetch": completed,
        "facts": lambda: assess(*given, state["call"], state["data"], knowledge, moment),
        "cards": lambda: answer(
            state["findings"], state["quiet"], state["call"].rules, knowledge, lambda: str(next(ids)), 100
        ),
        "json": lambda: orjson.dumps({"cards": state["cards"]}),
    }
    for _ in range(WARMUP_CALLS):  # every stage, each on what the one before made
        state["body"] = steps["parse"]()
        state["call"] = steps["drafts"]()
        state["data"] = steps["prefetch"]()
        patient, state["findings"] = steps["facts"]()
        state["quiet"] = store.quiet(patient.patient_id, snooze_days=knowledge.snooze_days)
        state["cards"] = steps["cards"]()[0]  # (cards, issued) or, since the thirty-sixth pass, (…, asked)
        steps["json"]()
    if stage != WARM_UP_ONLY:
        step = steps[stage]
        for _ in range(calls):
            step()


def instructions(tree: Path, scenario: str, stage: str, calls: int) -> int:
    """The instructions of one process that warms up and calls ``stage``."""
    argv = [__file__, "--drive", str(tree), "--scenario", scenario, "--stage", stage, "--calls", str(calls)]
    return count(argv)


def per_stage(tree: Path, scenario: str, calls: int) -> dict[str, float]:
    """k instructions a call of each stage, two valgrind runs at a time (the machine's two cores)."""
    names = [WARM_UP_ONLY, *STAGES]
    with ThreadPoolExecutor(2) as pool:
        counts = dict(zip(names, pool.map(lambda s: instructions(tree, scenario, s, calls), names), strict=True))
    return {stage: (counts[stage] - counts[WARM_UP_ONLY]) / calls / 1000 for stage in STAGES}


def _archive(rev: str, into: Path) -> str:
    """``rev``'s tree written into ``into``; its short commit id."""
    commit = short(rev)
    if commit is None:
        raise SystemExit(f"{rev}: not a commit of this repository (then_and_now.py needs its git history)")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True)
    if archive.returncode:
        raise SystemExit(f"git archive {rev}: {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit


def _table(scenario: str, before: dict[str, float], after: dict[str, float], then: str, now: str) -> None:
    print(f"\n{scenario!r}, k instructions a call ({then} → {now}):\n")
    print("| stage | before | after | change |\n|---|---:|---:|---:|")
    for stage, name in STAGES.items():
        print(f"| {name} | {before[stage]:,.0f} | {after[stage]:,.0f} | {after[stage] / before[stage] - 1:+.0%} |")
    was, is_ = sum(before.values()), sum(after.values())
    print(f"| **the stages together** | **{was:,.0f}** | **{is_:,.0f}** | {is_ / was - 1:+.0%} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default=START_OF_ISSUE_17, help="the earlier commit (default: issue 17's start)")
    parser.add_argument("--scenario", action="append", choices=tuple(_requests()), help="repeatable")
    parser.add_argument("--calls", type=int, help=f"calls a stage (default: {DEFAULT_CALLS}; {CALLS})")
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    args = parser.parse_args()
    chosen = args.scenario or ["sandbox order", "500 prefetch entries"]
    if args.drive:
        drive(args.drive, chosen[0], args.stage, args.calls)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="cds-then-") as tmp:
        then = _archive(args.rev, Path(tmp))
        now = f"this checkout, {describe()}"
        for scenario in chosen:
            calls = args.calls or CALLS.get(scenario, DEFAULT_CALLS)
            _table(scenario, per_stage(Path(tmp), scenario, calls), per_stage(ROOT, scenario, calls), then, now)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
