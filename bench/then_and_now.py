"""Each stage of a hook call in instructions, in this checkout and at an earlier commit: the
before and after of docs/performance.md, in a figure the machine's hour does not move.

The other commit is written out of git into a temporary directory (``git archive``). In each
tree, one process per stage calls that stage's own function on a scenario's parsed request, N
times after a warm-up of every stage, under valgrind (cachegrind without cache simulation, one
hash seed, as ``bench/instructions.py``), less a process that only warms up: the body's parse
(and its freeing), the envelope and drafts with the rules that apply, the prefetch's completion,
the patient's facts and the rules, the cards, the response JSON. The stages are the pipeline's
own functions, asked for by name: a commit whose pipeline names them otherwise stops the run
with the name it lacks. Both trees are sent this checkout's requests (``bench/scenarios.py``).

    python bench/then_and_now.py [--rev 1de3968] [--scenario "500 prefetch entries"] [--calls 40]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START_OF_ISSUE_17 = "1de3968"  # the wrk harness over the code as it was before issue 17's changes
STAGES = {
    "parse": "body: JSON parse and shape check (and freeing it)",
    "read": "envelope, context and drafts read; rules that apply",
    "prefetch": "prefetch completed and checked",
    "assess": "patient facts and rules",
    "answer": "cards: policy, suggestions, rendering",
    "dumps": "response JSON",
}
WARMUP_CALLS = 20


def _scenario(name: str) -> bytes:
    """A request of this checkout's ``bench/scenarios.py``, whichever tree is measured."""
    spec = importlib.util.spec_from_file_location("bench_scenarios", ROOT / "bench" / "scenarios.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import orjson

    return orjson.dumps(module.scenarios("http://127.0.0.1:1/fhir")[name])


def drive(tree: Path, scenario: str, stage: str, calls: int) -> None:
    """In ``tree``'s code: every stage warmed up, then ``stage`` called ``calls`` times."""
    sys.path.insert(0, str(tree))
    raw = _scenario(scenario)
    import orjson

    from cds_service.clock import at_noon
    from cds_service.deps import build_runtime
    from cds_service.pipeline import evaluate as pipeline
    from cds_service.pipeline.knowledge import load_knowledge
    from cds_service.pipeline.prefetch import complete_prefetch
    from cds_service.protocol.body import parse_body
    from cds_service.protocol.services import SERVICES
    from cds_service.settings import Settings

    logging.disable(logging.CRITICAL)
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="cds-then-now-")), auth_mode="off")
    clock = at_noon(date(2026, 11, 21))
    knowledge = load_knowledge(settings)
    store = build_runtime(settings, knowledge, clock=clock).store
    service = next(s for s in SERVICES.values() if s.hook == "order-select")
    loop, ids, today = asyncio.new_event_loop(), iter(range(10**9)), clock().date()
    state: dict[str, Any] = {}

    def completed() -> Any:
        sent = state["body"].get("prefetch") or {}
        patient_id = state["call"].context.patientId
        return loop.run_until_complete(complete_prefetch(service.prefetch, sent, patient_id, None, deadline=1))

    steps: dict[str, Callable[[], Any]] = {
        "parse": lambda: parse_body(raw, settings.body_limits),
        "read": lambda: pipeline._read(service, state["body"], knowledge, 200),
        "prefetch": completed,
        "assess": lambda: pipeline._assess(service, state["call"], state["data"], knowledge, today),
        "answer": lambda: pipeline._answer(
            state["findings"], state["quiet"], state["call"].rules, knowledge, lambda: str(next(ids)), 100
        ),
        "dumps": lambda: orjson.dumps({"cards": state["cards"]}),
    }
    for _ in range(WARMUP_CALLS):
        state["body"], state["call"] = steps["parse"](), None
        state["call"] = steps["read"]()
        state["data"] = steps["prefetch"]()
        patient, state["findings"] = steps["assess"]()
        state["quiet"] = store.quiet(patient.patient_id, snooze_days=knowledge.snooze_days)
        state["cards"], _ = steps["answer"]()
        steps["dumps"]()
    step = steps.get(stage)
    for _ in range(calls if step else 0):
        step()  # type: ignore[misc]


def instructions(tree: Path, scenario: str, stage: str, calls: int) -> int:
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--drive", str(tree), "--scenario", scenario, "--stage", stage]
    command += ["--calls", str(calls)]
    env = os.environ | {"PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode or found is None:
        raise SystemExit(f"{tree} could not be measured ({stage}):\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_stage(tree: Path, scenario: str, calls: int) -> dict[str, float]:
    """k instructions a call of each stage, two valgrind runs at a time (the machine's two cores)."""
    names = ["none", *STAGES]
    with ThreadPoolExecutor(2) as pool:
        counts = dict(zip(names, pool.map(lambda s: instructions(tree, scenario, s, calls), names), strict=True))
    return {stage: (counts[stage] - counts["none"]) / calls / 1000 for stage in STAGES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default=START_OF_ISSUE_17, help="the earlier commit (default: issue 17's start)")
    parser.add_argument("--scenario", action="append", help="a scenario of bench/scenarios.py (repeatable)")
    parser.add_argument("--calls", type=int, help="calls a stage (default: 300, 40 for 500 entries)")
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    args = parser.parse_args()
    chosen = args.scenario or ["sandbox order", "500 prefetch entries"]
    if args.drive:
        drive(args.drive, chosen[0], args.stage, args.calls)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    then = Path(tempfile.mkdtemp(prefix="cds-then-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.rev], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(then)], input=archive.stdout, check=True)
    for scenario in chosen:
        calls = args.calls or (40 if "500" in scenario else 300)
        before, after = per_stage(then, scenario, calls), per_stage(ROOT, scenario, calls)
        print(f"\n{scenario!r}, k instructions a call ({args.rev} → this checkout):\n")
        print("| stage | before | after | change |\n|---|---:|---:|---:|")
        for stage, name in STAGES.items():
            print(f"| {name} | {before[stage]:,.0f} | {after[stage]:,.0f} | {after[stage] / before[stage] - 1:+.0%} |")
        was, now = sum(before.values()), sum(after.values())
        print(f"| **the stages together** | **{was:,.0f}** | **{now:,.0f}** | {now / was - 1:+.0%} |")
    shutil.rmtree(then)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
