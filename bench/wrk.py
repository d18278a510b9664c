"""One load run with ``wrk`` (Debian's C load generator: one thread, keep-alive connections on
loopback), and the CPU the measured server spent on it.

A Python client costs more per request than the server it measures (httpx: ~1.5 ms a call against
the bare echo); wrk costs a few microseconds, so the figures are the server's. The CPU per call is
the server's user + system time over the run (``/proc/<pid>/stat``, which is what ``getrusage``
reports to the process itself; its worker processes included) divided by the calls answered.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "request.lua"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Load:
    p50_ms: float
    p99_ms: float
    requests: int
    rps: float
    errors: int
    cpu_ms_per_call: float
    # The machine's CPU time that other tenants of the VM took during the run (``steal``).
    steal: float = 0.0
    # wrk's mean latency, a request sent to its answer read (not wrk's time writing the next).
    mean_ms: float = 0.0


def median(loads: list[Load]) -> Load:
    """Several runs of one measurement as one: each figure's median, the errors and calls summed."""
    return Load(
        p50_ms=statistics.median(x.p50_ms for x in loads),
        p99_ms=statistics.median(x.p99_ms for x in loads),
        requests=sum(x.requests for x in loads),
        rps=statistics.median(x.rps for x in loads),
        errors=sum(x.errors for x in loads),
        cpu_ms_per_call=statistics.median(x.cpu_ms_per_call for x in loads),
        steal=statistics.mean(x.steal for x in loads),
        mean_ms=statistics.median(x.mean_ms for x in loads),
    )


def machine_times() -> tuple[int, int]:
    """(all CPU time, stolen CPU time) of the machine so far, in ticks (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[7]


def steal_between(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[0] - before[0]
    return (after[1] - before[1]) / total if total else 0.0


def wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does)")
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (uvicorn's worker processes), in seconds."""
    pids = [pid, *_children(pid)]
    total = 0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in map(int, children):
            found += [child, *_children(child)]
    return found


def _until_answered(command: list[str], env: dict[str, str], answered: Path, seconds: float) -> None:
    """wrk until the script has had every body answered once (it writes ``answered``), then
    interrupted: its main thread would sleep out the run's whole duration."""
    answered.unlink(missing_ok=True)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + seconds + 30
    while process.poll() is None and not answered.exists():
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("wrk did not end")
        time.sleep(0.02)
    if not answered.exists():
        raise SystemExit(f"the bodies were not all answered within {seconds:g} s: run with more seconds")
    process.send_signal(signal.SIGINT)  # wrk's own handler: it stops, then writes its figures
    _, err = process.communicate(timeout=30)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command, stderr=err)


def drive(
    url: str,
    body: Path | list[Path],
    *,
    concurrency: int,
    seconds: float,
    pid: int,
    tokens: Path | None = None,
    new_patient: str | None = None,
    once: bool = False,
    workdir: Path,
) -> Load:
    """``body`` POSTed to ``url`` at ``concurrency`` for ``seconds`` (several bodies: each in
    turn; ``once``: each once, then the run ends, if within ``seconds``), each request with the
    next of ``tokens`` if given (have more than it will send: wrk idles out the run once they are
    spent), and with ``new_patient`` (the body's patient id) each for a patient of its own."""
    out = workdir / "wrk.json"
    env = os.environ | {"BENCH_OUT": str(out)}
    if isinstance(body, list):
        listed = workdir / "bodies.txt"
        listed.write_text("\n".join(map(str, body)) + "\n")
        env |= {"BENCH_BODIES": str(listed)} | ({"BENCH_ONCE": "1"} if once else {})
    else:
        env["BENCH_BODY"] = str(body)
    if tokens is not None:
        env["BENCH_TOKENS"] = str(tokens)
    if new_patient is not None:
        env["BENCH_NEW_PATIENT"] = new_patient
    command = [wrk(), "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(LUA), url]
    before, machine = cpu_seconds(pid), machine_times()
    if once:
        _until_answered(command, env, out.with_name(out.name + ".answered"), seconds)
    else:
        subprocess.run(command, env=env, check=True, capture_output=True)
    spent = cpu_seconds(pid) - before
    steal = steal_between(machine, machine_times())
    figures = json.loads(out.read_text())
    requests = figures["requests"]
    return Load(
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        requests=requests,
        rps=requests / (figures["duration_us"] / 1e6),
        errors=figures["non_2xx"] + figures["socket_errors"],
        cpu_ms_per_call=spent * 1000 / max(requests, 1),
        steal=steal,
        mean_ms=figures["mean_us"] / 1000,
    )
