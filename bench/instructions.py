"""Instructions per hook call through the whole app, counted by valgrind: a figure that does not
drift with the machine.

On a shared 2-core VM the timings of ``make bench`` move by 10–30% from one hour to the next
(other tenants' steal time, the echo included), more than most single changes are worth. The
instructions a call executes do not: this runs the app in process (no uvicorn, no socket; the
ASGI app called directly, SQLite store, JSON logs at INFO to /dev/null; authentication off, or
on with ``--auth``: an ES384 token minted beforehand for each call, as ``make bench`` sends),
once with no calls and once with N, under ``valgrind --tool=cachegrind --cache-sim=no``, and
prints (I(N) − I(0)) ÷ N, beside the same count for the echo (``bench/echo.py``, called the
same way) and their ratio: issue 17's ratios to the echo, in a figure that holds from hour to
hour (the wall-clock ratio of the 500-entry call at c = 1 comes within a few per cent of it; at
c = 8 it runs higher, and the small call's lower: uvicorn's work, left out here). The
card writer's thread is counted too, each call's record written before the next call (one
transaction a call: more than under load, where calls share one), so that runs agree to within
1%. The fetched scenario runs the test FHIR server in this process, so its side of each request
is counted too (the same in any A/B).

    python bench/instructions.py [--scenario "sandbox order"] [--calls 200] [--auth]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scenarios import FETCHED, SELECT, fhir_resources, scenarios  # noqa: E402
from bench.valgrind import instructions as count  # noqa: E402
from tests.fhir_server import FhirTestServer, start  # noqa: E402
from tests.tokens import ISSUER, SigningKey, claims, jwks  # noqa: E402

WARMUP_CALLS = 50
AUDIENCE = "http://127.0.0.1:8000"  # the server of the calls' ASGI scope


def drive(scenario: str, calls: int, auth: Path | None = None) -> None:
    """The app, called ``calls`` times in process after a warm-up: what valgrind counts."""
    from cds_service.app import create_app
    from cds_service.observability import configure_logging
    from cds_service.settings import Settings

    fhir_base, allowed = "http://127.0.0.1:1/fhir", list[str]()
    if scenario == FETCHED:  # the test FHIR server in this process: its instructions are counted too
        fhir = FhirTestServer(resources=fhir_resources(50))
        start(fhir)
        fhir_base, allowed = fhir.base, [fhir.base]
    kept = tempfile.TemporaryDirectory(prefix="cds-instructions-")  # removed once the calls are done
    data_dir = Path(kept.name)
    tokens: list[bytes] = []
    if auth is not None:  # the key set and the tokens ``mint`` wrote
        clients = orjson.loads((auth / "clients.json").read_bytes())
        (data_dir / "clients.json").write_bytes(orjson.dumps([{**clients[0], "fhir_servers": allowed}]))
        settings = Settings(data_dir=data_dir, trusted_clients_file=data_dir / "clients.json", public_url=[AUDIENCE])
        tokens = [b"Bearer " + line for line in (auth / "tokens.txt").read_bytes().split()]
    else:
        settings = Settings(data_dir=data_dir, auth_mode="off", fhir_servers=allowed)
    configure_logging("INFO", "json")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the process)
    app = create_app(settings)

    async def written() -> None:
        # Each call's card record written before the next call: batches that depend on timing
        # would make the count drift by a few per cent.
        await app.state.runtime.cards_written()

    async def run() -> None:
        async with app.router.lifespan_context(app):
            await _calls(app, orjson.dumps(scenarios(fhir_base)[scenario]), calls, tokens, written)
            await asyncio.sleep(0.05)  # the card writer's last batch

    asyncio.run(run())


def drive_echo(scenario: str, calls: int) -> None:
    """The same calls to the echo (``bench/echo.py``): the floor the targets are ratios to."""
    from bench.echo import app

    async def nothing() -> None:
        return None

    asyncio.run(_calls(app, orjson.dumps(scenarios("http://127.0.0.1:1/fhir")[scenario]), calls, [], nothing))


async def _calls(app: Any, body: bytes, calls: int, tokens: list[bytes], after: Callable[[], Awaitable[None]]) -> None:
    """A warm-up, then ``calls`` POSTs of ``body`` through the ASGI app, each answered 200."""
    path = f"/cds-services/{SELECT}"
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope: dict[str, Any] = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST"}
    scope |= {"scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b""}
    scope |= {"headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    for _ in range(WARMUP_CALLS + calls):
        messages = iter([{"type": "http.request", "body": body, "more_body": False}])
        sent: list[dict[str, object]] = []

        async def receive(messages: Iterator[dict[str, object]] = messages) -> object:
            return next(messages, {"type": "http.disconnect"})

        async def send(message: dict[str, object], sent: list[dict[str, object]] = sent) -> None:
            sent.append(message)

        token = [(b"authorization", tokens.pop())] if tokens else []
        await app({**scope, "headers": headers + token, "state": {}}, receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"the call answered {sent[0]['status']}: {sent[1:]}")
        await after()


def mint(directory: Path, count: int) -> Path:
    """A trusted key set and ``count`` tokens for the hook call, written before valgrind starts:
    signing is the client's work, not the service's."""
    key = SigningKey.generate("ES384")
    (directory / "clients.json").write_bytes(orjson.dumps([{"iss": ISSUER, "jwks": jwks(key)}]))
    aud, now = f"{AUDIENCE}/cds-services/{SELECT}", time.time()
    (directory / "tokens.txt").write_text("\n".join(key.sign(claims(aud, now)) for _ in range(count)))
    return directory


def instructions(scenario: str, calls: int, auth: bool, echo: bool = False) -> int:
    argv = [__file__, "--drive", "--scenario", scenario, "--calls", str(calls), *(["--echo"] if echo else [])]
    minted = tempfile.TemporaryDirectory(prefix="cds-tokens-")  # removed when this function returns
    if auth and not echo:
        argv += ["--tokens", str(mint(Path(minted.name), WARMUP_CALLS + calls))]
    return count(argv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", help="a scenario of bench/scenarios.py (repeatable)")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--auth", action="store_true", help="authentication on: a token minted for each call")
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    chosen = args.scenario or ["sandbox order", "50 prefetch entries", "six rules fire"]
    if args.drive:
        drive_echo(chosen[0], args.calls) if args.echo else drive(chosen[0], args.calls, args.tokens)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    print(f"| scenario ({'auth on' if args.auth else 'auth off'}) | k instructions per call | echo | vs echo |")
    print("|---|---:|---:|---:|")
    for scenario in chosen:
        service, echo = (
            (instructions(scenario, args.calls, args.auth, e) - instructions(scenario, 0, args.auth, e)) / args.calls
            for e in (False, True)
        )
        print(f"| {scenario} | {service / 1000:,.0f} | {echo / 1000:,.0f} | {service / echo:.2f}× |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
