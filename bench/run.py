"""``make bench``: the service against a bare orjson echo on the same server stack, driven by wrk.

Starts on loopback, side by side: the echo (``bench/echo.py``), the real service twice
(``cds-service serve``, production defaults, SQLite store: once with client authentication off,
once on with a trusted test issuer) and a FHIR test server for the scenario that fetches. For
each scenario and concurrency (1, 8, 32) wrk drives each target after a warm-up, in three
rounds of the three targets in turn, and each figure is the median of a target's three (on a
shared VM one run can catch another tenant's burst: the rounds spread one over the targets,
and the CPU time stolen from the machine is printed beside each). With authentication on,
every request carries its own ES384 JWT, minted beforehand (the service refuses a token twice,
so replay protection runs). Prints p50/p99, requests/s, CPU per
call and the service/echo ratios, then the issue-17 targets met or not, RSS growth over 20,000
calls and the cost per 100 prefetch entries; writes ``bench/results.md``.

    python bench/run.py [--seconds 2] [--repeat 3] [--leak-requests 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.revision import describe  # noqa: E402
from bench.scenarios import SELECT, fhir_resources, scenarios  # noqa: E402
from bench.wrk import Load, drive, machine_times, median, steal_between  # noqa: E402
from tests.fhir_server import FhirTestServer, start  # noqa: E402
from tests.serving import free_port  # noqa: E402
from tests.tokens import SigningKey, claims, jwks  # noqa: E402

ISSUER = "https://bench.example.org"
CONCURRENCY = (1, 8, 32)
WARMUP_SECONDS = 1.0
# Tokens minted for one authenticated run: more than the service answers in the run's seconds.
TOKENS_PER_SECOND = 3000
ECHO, OFF, ON = "echo", "auth off", "auth on"


@dataclass(frozen=True)
class Run:
    scenario: str
    target: str
    concurrency: int
    load: Load


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited during start-up")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not start")


def rss(pid: int) -> int:
    """VmRSS of a process, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Bench:
    """The echo and one service process per target (``auth off``, ``auth on``), on loopback."""

    def __init__(
        self,
        workdir: Path,
        *,
        targets: tuple[str, ...] = (OFF, ON),
        workers: int = 1,
        database_url: str | None = None,
        service: str = "cds_service",
    ) -> None:
        """``service``: the module run as ``cds-service`` (``bench.timed``: with its stages timed)."""
        self.workdir, self.targets = workdir, targets
        self.key = SigningKey.generate("ES384")
        self.fhir = FhirTestServer(resources=fhir_resources(50))
        self.fhir_httpd, _ = start(self.fhir)
        clients = [{"iss": ISSUER, "jwks": jwks(self.key), "fhir_servers": [self.fhir.base]}]
        (workdir / "clients.json").write_text(json.dumps(clients))
        self.ports: dict[str, int] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.log = open(workdir / "services.log", "wb")  # noqa: SIM115 (closed in stop)
        for target in targets:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
            env |= {"CDS_DATA_DIR": str(workdir / target.replace(" ", "-"))}
            if target == OFF:
                env |= {"CDS_AUTH_MODE": "off", "CDS_FHIR_SERVERS": json.dumps([self.fhir.base])}
            else:
                env |= {"CDS_TRUSTED_CLIENTS_FILE": str(workdir / "clients.json")}
            if database_url:
                env["CDS_DATABASE_URL"] = database_url
            self._start(target, ["-m", service, "serve", "--workers", str(workers)], env)
        self._start(ECHO, [str(ROOT / "bench" / "echo.py")], dict(os.environ))

    def _start(self, target: str, command: list[str], env: dict[str, str]) -> None:
        port = self.ports[target] = free_port()
        command = [sys.executable, *command, "--port", str(port)]
        process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.processes[target] = process
        _wait(f"http://127.0.0.1:{port}/healthz", process)

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
            process.wait(timeout=30)
        self.log.close()
        self.fhir_httpd.shutdown()

    def url(self, target: str) -> str:
        return f"http://127.0.0.1:{self.ports[target]}/cds-services/{SELECT}"

    def tokens(self, target: str, count: int) -> Path | None:
        """``count`` tokens minted for ``target`` (none with authentication off), one a line."""
        if target != ON:
            return None
        url, now = self.url(target), time.time()
        path = self.workdir / "tokens.txt"
        path.write_text("\n".join(self.key.sign(claims(url, now, iss=ISSUER, lifetime=300)) for _ in range(count)))
        return path

    def measure(
        self,
        body: dict[str, Any],
        targets: tuple[str, ...],
        concurrency: int,
        seconds: float,
        repeat: int = 1,
        *,
        new_patients: bool = False,
    ) -> dict[str, Load]:
        """Each target, after a warm-up, in ``repeat`` rounds of ``seconds`` (the targets in turn,
        each round starting with the next: a burst on the shared machine lands on every target, not
        on one target's runs): each figure's median per target. ``new_patients``: each call for a
        patient of its own (no answer the service keeps per patient is met again)."""
        path = self.workdir / "body.json"
        path.write_text(json.dumps(body))

        def run(target: str, seconds: float) -> Load:
            return drive(
                self.url(target),
                path,
                concurrency=concurrency,
                seconds=seconds,
                pid=self.processes[target].pid,
                tokens=self.tokens(target, int(TOKENS_PER_SECOND * seconds)),
                new_patient=body["context"]["patientId"] if new_patients else None,
                workdir=self.workdir,
            )

        for target in targets:
            run(target, WARMUP_SECONDS)
        runs: dict[str, list[Load]] = {target: [] for target in targets}
        for round_ in range(repeat):
            for target in targets[round_ % len(targets) :] + targets[: round_ % len(targets)]:
                runs[target].append(run(target, seconds))
        return {target: median(loads) for target, loads in runs.items()}

    def leak(self, body: dict[str, Any], calls: int) -> tuple[int, int, int]:
        """RSS of the auth-off service before and after at least ``calls`` calls at concurrency 8."""
        path = self.workdir / "body.json"
        path.write_text(json.dumps(body))
        pid = self.processes[OFF].pid
        before, answered = rss(pid), 0
        while answered < calls:
            answered += drive(self.url(OFF), path, concurrency=8, seconds=5, pid=pid, workdir=self.workdir).requests
        return before, rss(pid), answered


def _row(scenario: str, c: int, by: dict[tuple[str, str, int], Load]) -> str:
    echo, off, on = by[(scenario, ECHO, c)], by[(scenario, OFF, c)], by[(scenario, ON, c)]
    errors = sum(x.errors for x in (echo, off, on))

    def figures(load: Load) -> str:
        return f"{load.p50_ms:.2f} / {load.p99_ms:.1f} | {load.rps:,.0f}"

    return (
        f"| {scenario}{f' ({errors} errors)' if errors else ''} | {c} | {figures(echo)} | {figures(off)} | "
        f"{off.cpu_ms_per_call:.2f} | {off.p50_ms / echo.p50_ms:.1f}× / {off.rps / echo.rps:.0%} | "
        f"{figures(on)} | {on.cpu_ms_per_call:.2f} | {on.p50_ms / echo.p50_ms:.1f}× |"
    )


def _targets(by: dict[tuple[str, str, int], Load]) -> list[str]:
    """The issue-17 targets, each with the figure it is judged on."""
    small, large = "sandbox order", "500 prefetch entries"

    def ratio(scenario: str, target: str, c: int) -> float:
        return by[(scenario, target, c)].p50_ms / by[(scenario, ECHO, c)].p50_ms

    checks = [
        (f"{small}, c=1, auth off: p50 ≤ 4× echo", ratio(small, OFF, 1), 4.0),
        (f"{small}, c=1, auth on: p50 ≤ 6× echo", ratio(small, ON, 1), 6.0),
        (f"{large}, c=1, auth off: p50 ≤ 2× echo", ratio(large, OFF, 1), 2.0),
        (f"{large}, c=8, auth off: p50 ≤ 2× echo", ratio(large, OFF, 8), 2.0),
        (f"{small}, c=1, auth off: CPU per call ≤ 1 ms", by[(small, OFF, 1)].cpu_ms_per_call, 1.0),
    ]
    lines = [f"- {what}: {value:.2f} — {'met' if value <= limit else 'NOT met'}" for what, value, limit in checks]
    rps = by[(small, OFF, 8)].rps
    lines.append(f"- {small}, c=8, auth off: ≥ 1,000 req/s: {rps:,.0f} — {'met' if rps >= 1000 else 'NOT met'}")
    return lines


def _header(args: argparse.Namespace, steal: float) -> list[str]:
    """What was measured, when, on what code and machine, and how much of the machine was others'."""
    return [
        "# Benchmark results",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {describe()}.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}. wrk, one thread; per cell {WARMUP_SECONDS:g} s of warm-up, "
        f"then the median of {args.repeat} runs of {args.seconds:g} s, the targets in turn. SQLite store, "
        "default logging. Latency in ms (p50 / p99), CPU in ms of the service per call; ratios are "
        "service / echo (p50, and req/s).",
        "",
        f"CPU steal over the benchmark: {steal:.0%} of the machine's time went to other tenants of the VM"
        f"{' (figures well above an unshared run: compare with the echo beside them)' if steal > 0.05 else ''}.",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=2, help="seconds of each run (wrk counts whole seconds)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario, target and concurrency (medians)")
    parser.add_argument("--leak-requests", type=int, default=20000)
    args = parser.parse_args()
    started, machine = time.perf_counter(), machine_times()
    by: dict[tuple[str, str, int], Load] = {}
    with tempfile.TemporaryDirectory(prefix="cds-bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            bodies = scenarios(bench.fhir.base)
            for name, body in bodies.items():
                for c in CONCURRENCY:
                    loads = bench.measure(body, (ECHO, OFF, ON), c, args.seconds, args.repeat)
                    for target, load in loads.items():
                        by[(name, target, c)] = load
                        print(
                            f"{name:36} {target:8} c={c:<2} p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:6.1f} ms  "
                            f"{load.rps:6.0f} req/s  CPU {load.cpu_ms_per_call:.2f} ms/call  steal {load.steal:.0%}"
                            f"{'  ERRORS ' + str(load.errors) if load.errors else ''}",
                            flush=True,
                        )
            before, after, leak = bench.leak(bodies["50 prefetch entries"], args.leak_requests)
        finally:
            bench.stop()
    steal = steal_between(machine, machine_times())
    per_100 = {
        what: (getattr(by[("500 prefetch entries", OFF, 1)], what) - getattr(by[("50 prefetch entries", OFF, 1)], what))
        / 4.5
        for what in ("p50_ms", "cpu_ms_per_call")
    }
    lines = [
        *_header(args, steal),
        "| scenario | c | echo p50 / p99 | echo req/s | auth off p50 / p99 | req/s | CPU | vs echo "
        "| auth on p50 / p99 | req/s | CPU | vs echo |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(name, c, by) for name in bodies for c in CONCURRENCY),
        "",
        "Targets (issue 17):",
        "",
        *_targets(by),
        "",
        f"- RSS growth over {leak:,} calls (50 entries, c=8, auth off): "
        f"{(after - before) / 2**20:+.1f} MiB ({before / 2**20:.0f} → {after / 2**20:.0f} MiB).",
        f"- Cost of prefetch size, (500 − 50 entries) / 4.5, c=1, auth off: {per_100['p50_ms']:.2f} ms p50 and "
        f"{per_100['cpu_ms_per_call']:.2f} ms CPU per 100 entries.",
        f"- Wall time of the whole benchmark: {time.perf_counter() - started:.0f} s.",
    ]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    (ROOT / "bench" / "results.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
