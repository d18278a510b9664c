"""``make bench``: the service against a bare JSON echo on the same server stack.

Starts the real service (``cds-service serve``: production settings, client authentication on
with a trusted test issuer, SQLite store) and ``bench/echo.py`` on loopback, plus a FHIR test
server for the scenario that fetches. For each scenario and concurrency (1, 8, 32) a separate
load process sends the same requests to both, each with its own signed JWT (the service
refuses a token twice). Prints per run p50/p95/p99, requests/s and the service/echo ratios,
the service's peak RSS, its RSS growth over 20,000 requests and the cost per 100 prefetch
entries; writes ``bench/results.md`` and ``bench/latency.png``.

    python bench/run.py [--requests 400] [--leak-requests 20000]
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

from bench.scenarios import SELECT, fhir_resources, scenarios  # noqa: E402
from tests.fhir_server import FhirTestServer, start  # noqa: E402
from tests.serving import free_port  # noqa: E402
from tests.tokens import SigningKey, claims, jwks  # noqa: E402

ISSUER = "https://bench.example.org"
CONCURRENCY = (1, 8, 32)
WARMUP = 50


@dataclass(frozen=True)
class Run:
    scenario: str
    target: str
    concurrency: int
    p50: float
    p95: float
    p99: float
    rps: float
    errors: int


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


def _rss(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of a process, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for {pid}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Bench:
    def __init__(self, workdir: Path, *, workers: int = 1, database_url: str | None = None) -> None:
        self.workdir = workdir
        self.key = SigningKey.generate("ES384")
        self.fhir = FhirTestServer(resources=fhir_resources(50))
        self.fhir_httpd, _ = start(self.fhir)
        clients = [{"iss": ISSUER, "jwks": jwks(self.key), "fhir_servers": [self.fhir.base]}]
        (workdir / "clients.json").write_text(json.dumps(clients))
        self.service_port, self.echo_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
        env |= {"CDS_TRUSTED_CLIENTS_FILE": str(workdir / "clients.json"), "CDS_DATA_DIR": str(workdir / "data")}
        if database_url:
            env["CDS_DATABASE_URL"] = database_url
        self.service_log = open(workdir / "service.log", "wb")  # noqa: SIM115 (closed in stop)
        self.service = subprocess.Popen(
            [sys.executable, "-m", "cds_service", "serve", "--port", str(self.service_port), "--workers", str(workers)],
            env=env,
            stdout=self.service_log,
            stderr=subprocess.STDOUT,
        )
        self.echo = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "echo.py"), str(self.echo_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(f"http://127.0.0.1:{self.service_port}/healthz", self.service)
        _wait(f"http://127.0.0.1:{self.echo_port}/docs", self.echo)

    def stop(self) -> None:
        for process in (self.service, self.echo):
            process.terminate()
            process.wait(timeout=30)
        self.service_log.close()
        self.fhir_httpd.shutdown()

    def url(self, target: str) -> str:
        port = self.service_port if target == "service" else self.echo_port
        return f"http://127.0.0.1:{port}/cds-services/{SELECT}"

    def drive(self, target: str, body: dict[str, Any], concurrency: int, count: int) -> dict[str, Any]:
        url = self.url(target)
        now = time.time()
        headers = [f"Bearer {self.key.sign(claims(url, now, iss=ISSUER, lifetime=3600))}" for _ in range(count)]
        job = self.workdir / "job.json"
        job.write_text(
            json.dumps({"url": url, "body": json.dumps(body), "headers": headers, "concurrency": concurrency})
        )
        out = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "load.py"), str(job)], capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout)

    def measure(self, scenario: str, body: dict[str, Any], target: str, concurrency: int, count: int) -> Run:
        self.drive(target, body, concurrency, WARMUP)
        result = self.drive(target, body, concurrency, count)
        latencies = [x * 1000 for x in result["latencies"]]
        errors = sum(n for status, n in result["statuses"].items() if status != "200")
        return Run(
            scenario,
            target,
            concurrency,
            _percentile(latencies, 0.50),
            _percentile(latencies, 0.95),
            _percentile(latencies, 0.99),
            len(latencies) / result["wall"],
            errors,
        )


def _table(runs: list[Run]) -> list[str]:
    by = {(r.scenario, r.target, r.concurrency): r for r in runs}
    lines = [
        "| scenario | c | service p50 / p95 / p99 ms | echo p50 / p95 / p99 ms | service req/s | echo req/s "
        "| p50 ratio | throughput ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in dict.fromkeys(r.scenario for r in runs):
        for c in CONCURRENCY:
            s, e = by[(scenario, "service", c)], by[(scenario, "echo", c)]
            errors = f" ({s.errors} errors)" if s.errors else ""
            lines.append(
                f"| {scenario}{errors} | {c} | {s.p50:.1f} / {s.p95:.1f} / {s.p99:.1f} | "
                f"{e.p50:.1f} / {e.p95:.1f} / {e.p99:.1f} | {s.rps:.0f} | {e.rps:.0f} | "
                f"{s.p50 / e.p50:.2f}× | {s.rps / e.rps:.0%} |"
            )
    return lines


def _chart(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r.scenario for r in runs))
    fig, axes = plt.subplots(1, len(CONCURRENCY), figsize=(15, 5), sharey=False)
    for ax, c in zip(axes, CONCURRENCY, strict=True):
        for offset, target in ((-0.2, "service"), (0.2, "echo")):
            values = [
                next(r.p50 for r in runs if (r.scenario, r.target, r.concurrency) == (n, target, c)) for n in names
            ]
            p99 = [next(r.p99 for r in runs if (r.scenario, r.target, r.concurrency) == (n, target, c)) for n in names]
            xs = [i + offset for i in range(len(names))]
            ax.bar(xs, values, width=0.4, label=f"{target} p50")
            ax.scatter(xs, p99, marker="_", s=200, color="black", label=f"{target} p99")
        ax.set_title(f"concurrency {c}")
        ax.set_xticks(range(len(names)), [n.replace(", ", ",\n") for n in names], fontsize=7, rotation=30, ha="right")
        ax.set_ylabel("latency (ms)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per scenario, target and concurrency")
    parser.add_argument("--leak-requests", type=int, default=20000)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cds-bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            runs = []
            bodies = scenarios(bench.fhir.base)
            for name, body in bodies.items():
                for c in CONCURRENCY:
                    for target in ("service", "echo"):
                        run = bench.measure(name, body, target, c, args.requests)
                        runs.append(run)
                        print(
                            f"{name:40} {target:7} c={c:<2} p50 {run.p50:6.1f} ms  p99 {run.p99:6.1f} ms  "
                            f"{run.rps:6.0f} req/s{'  ERRORS ' + str(run.errors) if run.errors else ''}",
                            flush=True,
                        )
            peak = _rss(bench.service.pid, "VmHWM")
            per_100 = {
                c: (
                    next(
                        r.p50
                        for r in runs
                        if (r.scenario, r.target, r.concurrency) == ("500 prefetch entries", "service", c)
                    )
                    - next(
                        r.p50
                        for r in runs
                        if (r.scenario, r.target, r.concurrency) == ("50 prefetch entries", "service", c)
                    )
                )
                / 4.5
                for c in CONCURRENCY
            }
            before = _rss(bench.service.pid, "VmRSS")
            leak = bench.drive("service", bodies["50 prefetch entries"], 8, args.leak_requests)
            after = _rss(bench.service.pid, "VmRSS")
        finally:
            bench.stop()
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}. {args.requests} requests per run after {WARMUP} warm-up; "
        "service with authentication on (ES384 JWT per request), SQLite store, default logging.",
        "",
        *_table(runs),
        "",
        f"- Service peak RSS: {peak / 2**20:.0f} MiB.",
        f"- RSS growth over {len(leak['latencies'])} requests (50 entries, c=8): "
        f"{(after - before) / 2**20:+.1f} MiB ({before / 2**20:.0f} → {after / 2**20:.0f} MiB).",
        "- Cost of prefetch size, p50 (500 − 50 entries) / 4.5: "
        + ", ".join(f"c={c}: {v:.2f} ms per 100 entries" for c, v in per_100.items())
        + ".",
        f"- Wall time of the whole benchmark: {time.perf_counter() - started:.0f} s.",
    ]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    (ROOT / "bench" / "results.md").write_text(text)
    _chart(runs, ROOT / "bench" / "latency.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
