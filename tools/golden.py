"""Golden responses: the whole answer the service gives to every hook request in ``fixtures/``.

    python -m tools.golden           # (re)write fixtures/golden/**/*.response.json
    python -m tools.golden --check   # exit 1, naming them, if any is missing, stale or orphaned

Run from the repository root. For the request ``fixtures/<folder>/<name>.json`` the golden file
is ``fixtures/golden/<folder>/<name>.response.json`` (a tree of its own, so that the globs over
the rule folders, ``*.json`` and ``*/fires-*.json``, keep finding requests only), holding::

    {"status": <HTTP status>, "body": <the whole response body>}

with each card's ``uuid`` and each suggestion's ``uuid`` replaced by ``"<uuid>"`` and nothing
else changed. Each request is posted as it is, over HTTP, to an in-process app built the way the
tests build theirs (the clock pinned at noon UTC of the fixtures' day, ``tools.fixture_day``,
authentication off, a fresh data directory), except that it may call no FHIR server at all
(``fhir_servers=[]``): an answer depends on the request alone, never on what happens to listen
on this machine's ports. A request that lacks prefetch keys the rules need is answered 412.

``tests/test_golden.py`` compares every answer, and ``cds-service evaluate`` for every 200, with
these files. A regenerated diff is a change of what clinicians see: review it like code.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.clock import at_noon
from cds_service.protocol.services import SERVICES
from cds_service.settings import Settings
from tools.fixture_day import FIXTURES, TODAY

GOLDEN = FIXTURES / "golden"
SUFFIX = ".response.json"
PLACEHOLDER = "<uuid>"
# Each declared hook's service URL (``protocol.services``, the hook declared once).
HOOK_URLS = {service.hook: f"/cds-services/{service_id}" for service_id, service in SERVICES.items()}


def hook_url(request: dict[str, Any]) -> str:
    """The URL of the service for ``request``'s hook; for a hook no service declares (a fixture of
    a bad request: "Hook Name"), order-select's, which answers it 400. One choice, made here."""
    return HOOK_URLS.get(str(request.get("hook")), HOOK_URLS["order-select"])


def hook_requests() -> list[Path]:
    """Every fixture file that is a hook request (a JSON object naming its ``hook``), sorted."""
    found = []
    for path in sorted(FIXTURES.rglob("*.json")):
        if GOLDEN in path.parents:
            continue
        content = json.loads(path.read_text())
        if isinstance(content, dict) and isinstance(content.get("hook"), str):
            found.append(path)
    return found


def golden_path(request: Path) -> Path:
    """``fixtures/<folder>/<name>.json`` -> ``fixtures/golden/<folder>/<name>.response.json``."""
    relative = request.relative_to(FIXTURES)
    return GOLDEN / relative.parent / (relative.stem + SUFFIX)


def golden_files() -> list[Path]:
    return sorted(GOLDEN.rglob("*" + SUFFIX))


def normalise(body: Any) -> Any:
    """The body with card and suggestion uuids (fresh on every call) replaced by ``<uuid>``."""
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        return body
    cards = []
    for card in body["cards"]:
        card = {**card, "uuid": PLACEHOLDER} if "uuid" in card else dict(card)
        if isinstance(card.get("suggestions"), list):
            card["suggestions"] = [
                {**suggestion, "uuid": PLACEHOLDER} if "uuid" in suggestion else suggestion
                for suggestion in card["suggestions"]
            ]
        cards.append(card)
    return {**body, "cards": cards}


def settings(data_dir: Path) -> Settings:
    """The tests' settings (``tests.conftest.settings``), with no FHIR server the app may call."""
    return Settings(data_dir=data_dir, fhir_deadline_seconds=1.0, auth_mode="off", fhir_servers=[])


@contextmanager
def service(data_dir: Path) -> Iterator[TestClient]:
    """The app, in process, on the tests' pinned clock."""
    with TestClient(create_app(settings(data_dir), clock=at_noon(TODAY))) as client:
        yield client


def answer(client: TestClient, request: Path) -> dict[str, Any]:
    """What the golden file holds for ``request``: the status and the normalised body."""
    content = json.loads(request.read_text())
    response = client.post(hook_url(content), json=content)
    return {"status": response.status_code, "body": normalise(response.json())}


def dumps(golden: dict[str, Any]) -> str:
    """The file's text: indented, keys in the service's own order, UTF-8 as is."""
    return json.dumps(golden, indent=2, ensure_ascii=False) + "\n"


def diff(expected: str, actual: str, name: str) -> str:
    return "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), name, "now answered"))


def main(argv: list[str] | None = None) -> int:
    logging.getLogger().setLevel(logging.ERROR)  # the fixtures' deliberate flaws, logged as warnings
    parser = argparse.ArgumentParser(prog="python -m tools.golden", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any file differs")
    args = parser.parse_args(argv)

    requests = hook_requests()
    expected = {golden_path(request) for request in requests}
    problems = 0
    with tempfile.TemporaryDirectory() as tmp, service(Path(tmp) / "var") as client:
        for request in requests:
            path = golden_path(request)
            text = dumps(answer(client, request))
            old = path.read_text() if path.exists() else None
            if old == text:
                continue
            problems += 1
            name = str(path.relative_to(FIXTURES.parent))
            if args.check:
                print(f"missing: {name}" if old is None else diff(old, text, name))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                print(f"{'wrote' if old is None else 'updated'}: {name}")
    for orphan in (path for path in golden_files() if path not in expected):
        problems += 1
        name = str(orphan.relative_to(FIXTURES.parent))
        if args.check:
            print(f"orphaned (no request): {name}")
        else:
            orphan.unlink()
            print(f"removed (no request): {name}")
    if args.check:
        if problems:
            print(f"{problems} golden file(s) out of date: review, then run python -m tools.golden", file=sys.stderr)
            return 1
        print(f"{len(requests)} golden responses up to date")
    else:
        print(f"{len(requests)} golden responses, {problems} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
