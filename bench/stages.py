"""Where a hook call's time goes in the running server, under wrk's load: each stage's wall time
per call, timed where it runs (``bench/timed.py``), beside wrk's latency and the echo's.

``bench/breakdown.py`` times each stage alone on a body it has met thousands of times; a call
in the server meets a body just parsed, after the other stages and the other calls have had the
CPU's caches. What the app does not account for (uvicorn, the socket, wrk) is wrk's mean latency
less the app's time to its answer written; the access line and the request metrics come after
the answer, while wrk reads it. ``--stops`` measures instead what a call costs up to each
stage: the service answering ``{"cards": []}`` as soon as that stage is done, p50 beside the
echo's (a service and three runs a stage: some five minutes a scenario with the defaults), with
authentication off, or with ``--auth`` on (then from the first stop, authentication alone). A
stop at the quiet step or the cards needs a call with cards; the table says when a stop was
not reached.

    python bench/stages.py [--scenario "500 prefetch entries"] [--seconds 5] [--auth] [--stops]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import ECHO, OFF, ON, TOKENS_PER_SECOND, WARMUP_SECONDS, Bench  # noqa: E402
from bench.scenarios import scenarios  # noqa: E402
from bench.timed import APP, APP_END, FRAMING, RECORDS, ROUTE, STAGES  # noqa: E402
from bench.wrk import Load, drive  # noqa: E402

DEFAULT_SCENARIOS = ("sandbox order", "500 prefetch entries")


def _measure(bench: Bench, target: str, body: Path, seconds: float, out: Path) -> tuple[Load, dict[str, Any]]:
    """wrk's figures for one run at concurrency 1, and the server's totals over that run alone."""
    pid = bench.processes[target].pid

    def run(seconds: float) -> Load:
        tokens = bench.tokens(target, int(TOKENS_PER_SECOND * seconds))
        return drive(
            bench.url(target), body, concurrency=1, seconds=seconds, pid=pid, tokens=tokens, workdir=bench.workdir
        )

    totals = out / f"{pid}.json"
    run(WARMUP_SECONDS)
    take_totals(pid, totals)  # the warm-up's, set aside
    load = run(seconds)
    return load, take_totals(pid, totals)


def take_totals(pid: int, path: Path) -> dict[str, Any]:
    """What the timed service ``pid`` has counted since it was last asked (SIGUSR1), from ``path``."""
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    for _ in range(200):
        if path.exists():
            figures: dict[str, Any] = json.loads(path.read_text())
            return figures
        time.sleep(0.05)
    raise RuntimeError(f"the timed service ({pid}) wrote no totals")


def _table(scenario: str, target: str, load: Load, echo: Load, totals: dict[str, Any]) -> list[str]:
    seconds, counts = totals["seconds"], totals["counts"]
    calls = counts.get(ROUTE, 0)
    if not calls:
        return [f"{scenario}, {target}: no call answered"]

    def us(stage: str) -> float:
        return seconds.get(stage, 0.0) * 1e6 / calls

    rows = [(stage.label, us(stage.label)) for stage in STAGES]
    route, app, app_end, mean = us(ROUTE), us(APP), us(APP_END), load.mean_ms * 1000
    rows += [
        (
            "the rest of the route (metrics, the record queued, response JSON, freeing the call)",
            route - sum(r for _, r in rows),
        )
    ]
    rows += [("middleware to the answer written (CORS, errors, the answer sent)", app - route)]
    rows += [(f"of it: {stage.label}", us(stage.label)) for stage in FRAMING if stage.key == "answer"]
    rows += [
        (
            "outside the app: uvicorn, the socket, wrk, the wait behind the call before's after-answer work"
            " (wrk's mean less the app to its answer)",
            mean - app,
        )
    ]
    collections = sorted(stage for stage in seconds if stage.startswith("collector"))
    return [
        f"### {scenario}, {target}: {calls:,} calls at c = 1",
        "",
        f"wrk: p50 {load.p50_ms * 1000:,.0f} µs, mean {mean:,.0f} µs, CPU {load.cpu_ms_per_call * 1000:,.0f} µs a call;"
        f" the echo's p50 {echo.p50_ms * 1000:,.0f} µs ({load.p50_ms / echo.p50_ms:.2f}×)",
        "",
        "| stage | µs per call |",
        "|---|---:|",
        *(f"| {stage} | {micros:,.0f} |" for stage, micros in rows),
        f"| **wrk's mean latency** | **{mean:,.0f}** |",
        *(f"| within it: {stage} ({counts[stage]:,} in all) | {us(stage):,.0f} |" for stage in collections),
        f"| after the answer, while wrk reads it: the access line and the request metrics | {app_end - app:,.0f} |",
        *(f"| of it: {stage.label} | {us(stage.label):,.0f} |" for stage in FRAMING if stage.key == "access"),
        f"| beside it: {RECORDS} | {us(RECORDS):,.0f} |",
        "",
    ]


def _breakdown(bench: Bench, bodies: dict[str, Any], args: argparse.Namespace, out: Path) -> list[str]:
    lines = []
    for scenario in args.scenario or DEFAULT_SCENARIOS:
        body = bench.workdir / "body.json"
        body.write_text(json.dumps(bodies[scenario]))
        echo = bench.measure(bodies[scenario], (ECHO,), 1, args.seconds)[ECHO]
        for target in bench.targets:
            load, totals = _measure(bench, target, body, args.seconds, out)
            lines += _table(scenario, target, load, echo, totals)
    return lines


def stops(target: str) -> tuple[str, ...]:
    """The stages ``--stops`` answers after, in order (the whole call comes last): authentication
    only when it is on (off, it is a look-up), and never the body read (its parse follows at once)."""
    skipped = ("body",) if target == ON else ("auth", "body")
    return tuple(stage.key for stage in STAGES if stage.key not in skipped)


def _stops(workdir: Path, out: Path, scenario: str, seconds: int, target: str) -> list[str]:
    """p50 at c = 1 of the service answering right after each stage, and whole, beside the echo's
    (measured in turn with each); with authentication on, the first stop is authentication."""
    lines = [f"### {scenario}, {target}: answering after each stage", "", "| answered after | p50 | echo p50 | ratio |"]
    lines.append("|---|---:|---:|---:|")
    for stop in (*stops(target), ""):
        os.environ["BENCH_STOP_AFTER"] = stop
        (workdir / f"{target}-{stop or 'whole'}").mkdir()
        bench = Bench(workdir / f"{target}-{stop or 'whole'}", targets=(target,), service="bench.timed")
        try:
            body = scenarios(bench.fhir.base)[scenario]
            loads = bench.measure(body, (ECHO, target), 1, seconds, repeat=3)
            pid = bench.processes[target].pid
            counts = take_totals(pid, out / f"{pid}.json")["counts"]
        finally:
            bench.stop()
        service, echo = loads[target], loads[ECHO]
        label = next((s.label for s in STAGES if s.key == stop), "the whole call")
        if stop and counts.get(label) != counts.get(ROUTE):  # no cards: the call ended before it
            label += " (not reached by every call: no stop there)"
        ratio = service.p50_ms / echo.p50_ms
        lines.append(f"| {label} | {service.p50_ms * 1000:,.0f} µs | {echo.p50_ms * 1000:,.0f} µs | {ratio:.2f}× |")
    return [*lines, ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", help="repeatable; default: the sandbox order and 500 entries")
    parser.add_argument("--seconds", type=int, default=5, help="seconds of each measured run (after a warm-up)")
    parser.add_argument(
        "--auth", action="store_true", help="also with authentication on (an ES384 token a call); with --stops, on only"
    )
    parser.add_argument("--stops", action="store_true", help="p50 answering after each stage, instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cds-stages-") as tmp:
        workdir, out = Path(tmp), Path(tmp) / "stages"
        out.mkdir()
        os.environ["BENCH_STAGES_OUT"] = str(out)
        if args.stops:
            target = ON if args.auth else OFF
            scenarios_ = args.scenario or DEFAULT_SCENARIOS
            lines = [line for s in scenarios_ for line in _stops(workdir, out, s, args.seconds, target)]
        else:
            os.environ.pop("BENCH_STOP_AFTER", None)  # every call whole
            bench = Bench(workdir, targets=(OFF, ON) if args.auth else (OFF,), service="bench.timed")
            try:
                lines = _breakdown(bench, scenarios(bench.fhir.base), args, out)
            finally:
                bench.stop()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
