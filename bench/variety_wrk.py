"""The histories of ``bench/variety.py`` served and driven by wrk: what a site's varied patients
cost on the wall clock, beside the one history ``make bench`` repeats and the echo.

``bench/variety.py`` times the facts and rules in process; this sends the whole call. It starts
the echo and the service (authentication off, its SQLite store: as ``make bench`` does), warms
the service with the bench's history, then drives it, at c = 1 and 8:

- the bench's history, repeated (``make bench``'s "500 prefetch entries");
- 200 varied histories, drugs named inline: the first pass, each once at c = 1 (its concepts and
  dosing plans met for the first time: a service's first calls after a start, a site's first
  patients), then again, in turn for ``--seconds`` (the tables warm: a site's steady state);
- the same with drugs named by reference (another seed, so its concepts are new to the process).

The echo is driven with the same bodies, for the ratio (it keeps nothing between calls, so once
is as again).

    python bench/variety_wrk.py [--patients 200] [--seconds 5] [--append-to bench/results.md]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import ECHO, OFF, WARMUP_SECONDS, Bench  # noqa: E402
from bench.scenarios import scenarios  # noqa: E402
from bench.variety import Pools, request  # noqa: E402
from bench.wrk import Load, drive  # noqa: E402

CONCURRENCY = (1, 8)
# Long enough for every body of the first pass at c = 1 (~10 ms each): it ends when they are answered.
ONCE_SECONDS = 120


def _write(path: Path, body: dict[str, Any]) -> Path:
    path.write_bytes(orjson.dumps(body))
    return path


def _histories(workdir: Path, patients: int) -> dict[str, list[Path]]:
    """The bodies of each set, written to files for wrk (seeded as ``bench/variety.py``'s)."""
    bench_body = scenarios("http://127.0.0.1:1/fhir")["500 prefetch entries"]
    sets = {"the bench's history, repeated (make bench)": [_write(workdir / "bench.json", bench_body)]}
    for seed, by_reference, named in ((11, False, "inline"), (12, True, "by reference")):
        rng = random.Random(seed)
        pools = Pools(rng, 2000, 800)
        sets[f"{patients} patients, drugs {named}"] = [
            _write(workdir / f"{seed}-{i}.json", request(rng, pools, by_reference=by_reference))
            for i in range(patients)
        ]
    return sets


def _row(name: str, concurrency: int, service: Load, echo: Load) -> str:
    if service.errors:
        raise SystemExit(f"{name}: {service.errors} calls not answered 2xx")
    ratio = service.p50_ms / echo.p50_ms
    return (
        f"| {name} | {concurrency} | {service.requests:,} | {service.p50_ms:.2f} | {service.mean_ms:.2f} | "
        f"{echo.p50_ms:.2f} | {ratio:.2f}× |"
    )


def _measure(bench: Bench, sets: dict[str, list[Path]], seconds: float, workdir: Path) -> list[str]:
    pids = {target: process.pid for target, process in bench.processes.items()}

    def run(target: str, bodies: list[Path], c: int, duration: float, *, once: bool = False) -> Load:
        url, pid = bench.url(target), pids[target]
        return drive(url, bodies, concurrency=c, seconds=duration, pid=pid, once=once, workdir=workdir)

    [(repeated_name, bench_body), *varied] = sets.items()
    for target in (OFF, ECHO):
        run(target, bench_body, 1, WARMUP_SECONDS)
    rows = []
    for c in CONCURRENCY:
        rows.append(_row(repeated_name, c, run(OFF, bench_body, c, seconds), run(ECHO, bench_body, c, seconds)))
    for name, bodies in varied:
        first = run(OFF, bodies, 1, ONCE_SECONDS, once=True)
        echo = {c: run(ECHO, bodies, c, seconds) for c in CONCURRENCY}
        rows.append(_row(f"{name}: first pass", 1, first, echo[1]))
        rows += [_row(f"{name}: again", c, run(OFF, bodies, c, seconds), echo[c]) for c in CONCURRENCY]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0, help="each steady-state run")
    parser.add_argument("--append-to", type=Path, help="also append the table to this Markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cds-variety-wrk-") as tmp:
        workdir = Path(tmp)
        sets = _histories(workdir, args.patients)
        bench = Bench(workdir, targets=(OFF,))
        try:
            rows = _measure(bench, sets, args.seconds, workdir)
        finally:
            bench.stop()
    table = "\n".join(
        [
            "500-entry histories as a site sends them (bench/variety_wrk.py; wrk, ms, auth off; "
            f"{args.seconds:g} s a cell):",
            "",
            "| histories | c | calls | service p50 | service mean | echo p50 | p50 ratio |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(table)
    if args.append_to:
        with args.append_to.open("a", encoding="utf-8") as out:
            out.write(f"\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
