"""Golden responses: every fixture hook request gets, whole, the answer ``fixtures/golden/`` records.

Over HTTP (status and body) and through ``cds-service evaluate`` (the body of every 200; exit 2
where HTTP refuses). Card and suggestion uuids are compared as ``<uuid>``. After a reviewed
change, ``python -m tools.golden`` rewrites the files (fixtures/README.md, Golden responses).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.cli import main
from tests.conftest import FIXTURES, TODAY
from tools.golden import GOLDEN, answer, diff, dumps, golden_files, golden_path, hook_requests, normalise, service

REQUESTS = hook_requests()
IDS = [str(path.relative_to(FIXTURES)) for path in REQUESTS]
# Fixture files that are data, not hook requests: they have no golden response.
NOT_REQUESTS = {"fhir/demo-patients.json", "sandbox/jwt-vector.json"}
REGENERATE = "review the change, then run `python -m tools.golden` and review its diff"


@pytest.fixture(scope="module")
def golden_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module: no feedback is posted, so no answer depends on the ones before."""
    with service(tmp_path_factory.mktemp("golden") / "var") as client:
        yield client


def _golden(request: Path) -> dict[str, Any]:
    path = golden_path(request)
    if not path.exists():
        pytest.fail(f"{path.relative_to(FIXTURES.parent)} is missing: {REGENERATE}", pytrace=False)
    return json.loads(path.read_text())


def _assert_as_golden(expected: Any, actual: Any, request: Path, what: str) -> None:
    if actual != expected:
        name = str(golden_path(request).relative_to(FIXTURES.parent))
        pytest.fail(
            f"{what} differs from {name} ({REGENERATE}):\n{diff(dumps(expected), dumps(actual), name)}",
            pytrace=False,
        )


def test_every_fixture_is_a_hook_request_or_known_data() -> None:
    data = {
        str(path.relative_to(FIXTURES))
        for path in FIXTURES.rglob("*.json")
        if path not in REQUESTS and GOLDEN not in path.parents
    }
    assert data == NOT_REQUESTS, "a fixture that is not a hook request (no `hook`)? add it to NOT_REQUESTS"
    assert {path.parent.name for path in REQUESTS} >= {"multiple-rules", "sandbox", "ehr", "fhir-versions"}


def test_every_hook_request_has_a_golden_response() -> None:
    missing = [str(path.relative_to(FIXTURES)) for path in REQUESTS if not golden_path(path).exists()]
    assert not missing, f"no golden response for {missing}: run `python -m tools.golden` and review the new files"


def test_every_golden_response_has_its_request() -> None:
    expected = {golden_path(path) for path in REQUESTS}
    orphaned = [str(path.relative_to(FIXTURES.parent)) for path in golden_files() if path not in expected]
    assert not orphaned, f"golden responses without a request: {orphaned} (`python -m tools.golden` removes them)"


@pytest.mark.parametrize("request_path", REQUESTS, ids=IDS)
def test_http_answer_is_the_golden_response(golden_client: TestClient, request_path: Path) -> None:
    _assert_as_golden(_golden(request_path), answer(golden_client, request_path), request_path, "the HTTP answer")


@pytest.mark.parametrize("request_path", REQUESTS, ids=IDS)
def test_cli_answer_is_the_golden_response(capsys: pytest.CaptureFixture[str], request_path: Path) -> None:
    golden = _golden(request_path)
    status = main(["evaluate", str(request_path), "--today", TODAY.isoformat()])
    out = capsys.readouterr().out
    if golden["status"] != 200:
        # The CLI fetches nothing either: what HTTP refuses, it refuses.
        assert status == 2, out
        return
    assert status == 0, out
    _assert_as_golden(golden["body"], normalise(json.loads(out)), request_path, "`cds-service evaluate`'s answer")
