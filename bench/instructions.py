"""Instructions per hook call through the whole app, counted by valgrind: a figure that does not
drift with the machine.

On a shared 2-core VM the timings of ``make bench`` move by 10–30% from one hour to the next
(other tenants' steal time, the echo included), more than most single changes are worth. The
instructions a call executes do not: this runs the app in process (no uvicorn, no socket; the
ASGI app called directly, authentication off, SQLite store, JSON logs at INFO to /dev/null),
once with no calls and once with N, under ``valgrind --tool=cachegrind --cache-sim=no``, and
prints (I(N) − I(0)) ÷ N. The card writer's thread is counted too, each call's record written
before the next call (one transaction a call: more than under load, where calls share one), so
that runs agree to within 1%. The fetched scenario runs the test FHIR server in this process, so
its side of each request is counted too (the same in any A/B).

    python bench/instructions.py [--scenario "sandbox order"] [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scenarios import FETCHED, SELECT, fhir_resources, scenarios  # noqa: E402
from tests.fhir_server import FhirTestServer, start  # noqa: E402

WARMUP_CALLS = 50


def drive(scenario: str, calls: int) -> None:
    """The app, called ``calls`` times in process after a warm-up: what valgrind counts."""
    from cds_service.app import create_app
    from cds_service.observability import configure_logging
    from cds_service.settings import Settings

    fhir_base, allowed = "http://127.0.0.1:1/fhir", {}
    if scenario == FETCHED:  # the test FHIR server in this process: its instructions are counted too
        fhir = FhirTestServer(resources=fhir_resources(50))
        start(fhir)
        fhir_base, allowed = fhir.base, {"fhir_servers": [fhir.base]}
    data_dir = Path(tempfile.mkdtemp(prefix="cds-instructions-"))
    settings = Settings(data_dir=data_dir, auth_mode="off", **allowed)
    configure_logging("INFO", "json")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the process)
    app = create_app(settings)
    body = orjson.dumps(scenarios(fhir_base)[scenario])
    path = f"/cds-services/{SELECT}"
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http"}
    scope |= {"path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": headers}
    scope |= {"client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}

    async def call() -> None:
        messages = iter([{"type": "http.request", "body": body, "more_body": False}])
        sent: list[dict[str, object]] = []

        async def receive() -> object:
            return next(messages, {"type": "http.disconnect"})

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        await app({**scope, "state": {}}, receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"the call answered {sent[0]['status']}: {sent[1:]}")
        # Each call's card record written before the next call: batches that depend on timing
        # would make the count drift by a few per cent.
        await app.state.runtime.cards_written()

    async def run() -> None:
        async with app.router.lifespan_context(app):
            for _ in range(WARMUP_CALLS + calls):
                await call()
            await asyncio.sleep(0.05)  # the card writer's last batch

    asyncio.run(run())


def instructions(scenario: str, calls: int) -> int:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--drive",
        "--scenario",
        scenario,
        "--calls",
        str(calls),
    ]
    # One hash seed: set and dict layouts, and so the instructions, the same from run to run.
    env = os.environ | {"PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", help="a scenario of bench/scenarios.py (repeatable)")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    chosen = args.scenario or ["sandbox order", "50 prefetch entries", "six rules fire"]
    if args.drive:
        drive(chosen[0], args.calls)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    print("| scenario | k instructions per call |\n|---|---:|")
    for scenario in chosen:
        per_call = (instructions(scenario, args.calls) - instructions(scenario, 0)) / args.calls
        print(f"| {scenario} | {per_call / 1000:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
