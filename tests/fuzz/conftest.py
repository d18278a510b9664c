"""Property-based and schema-driven fuzzing: whatever arrives, the answer is never a 5xx.

Three generators, each bounded by ``FUZZ_EXAMPLES`` (examples per test; ``make fuzz`` raises it
and draws new examples on every run, where ``make test`` replays the same ones):

- arbitrary JSON, posted to every route;
- valid-but-arbitrary FHIR: hook requests built from the shipped terminology (drugs, doses,
  timings, conditions, history, imaging) that must come back 200 with well-formed cards;
- schemathesis, from the service's own OpenAPI document, with schema-valid and
  schema-violating requests, with authentication off and required.

The settings, apps and values this package's modules share.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from cds_service.app import create_app
from cds_service.rules import all_rules
from cds_service.settings import Settings
from tests.conftest import NOON, SELECT, SIGN, Clock
from tests.tokens import ISSUER, SigningKey, jwks

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
EXPLORING = "FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=EXAMPLES,
    # `make test` replays the same examples every run; `make fuzz` (FUZZ_EXAMPLES set) explores,
    # and keeps what failed (in .hypothesis/, not committed) to replay it first on the next run:
    # a long run cut short, or a failure on a busy machine, is not lost with its report.
    derandomize=not EXPLORING,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=DirectoryBasedExampleDatabase(Path(__file__).resolve().parents[2] / ".hypothesis" / "fuzz")
    if EXPLORING
    else None,
)
RULE_IDS = {rule.id for rule in all_rules()}
ROUTES = [SELECT, SIGN, SELECT + "/feedback", SIGN + "/feedback"]


# Every app's files in one directory, removed when the test process ends (an app is made at import).
_SCRATCH = tempfile.TemporaryDirectory(prefix="cds-fuzz-")


def fuzz_app(clock: float = NOON, **overrides: Any) -> Any:
    data_dir = Path(tempfile.mkdtemp(dir=_SCRATCH.name))
    return create_app(Settings(**{"data_dir": data_dir, "auth_mode": "off", **overrides}), clock=Clock(clock))


@pytest.fixture(scope="module")
def client() -> Any:
    with TestClient(fuzz_app()) as client:
        yield client


def assert_no_server_error(response: Any) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code >= 400:
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["diagnostics"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=40,
)
KEY = SigningKey.generate("ES384")


def secure_app(clock: float = NOON) -> Any:
    """The app with authentication required, trusting one issuer whose key is ``KEY``."""
    trusted = Path(tempfile.mkdtemp(dir=_SCRATCH.name)) / "trusted-clients.json"
    trusted.write_text(json.dumps([{"iss": ISSUER, "jwks": jwks(KEY)}]))
    return fuzz_app(clock, auth_mode="required", trusted_clients_file=trusted, public_url=["http://testserver"])


SECURE_APP = secure_app()
