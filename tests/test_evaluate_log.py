"""``cds-service evaluate``'s log, as the HTTP route's: every line of the call carries its
hookInstance (it carried none: no key in JSON, ``[None]`` in text), a line of no call says ``-``
in text, and a prefetch key holding an OperationOutcome is not said to be fetched offline."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, fixture
from tests.serving import CLI

# Its conditions key holds the EHR's OperationOutcome, and it names a fhirServer: offline, not called.
_REQUEST = "ehr/epic-order-sign.json"


def _run(tmp_path: Path, *args: str, log_format: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("CDS_")}
    env = {**clean, "CDS_DATA_DIR": str(tmp_path / "data"), "CDS_LOG_FORMAT": log_format, "CDS_LOG_LEVEL": "debug"}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_every_line_of_an_offline_evaluation_carries_its_hook_instance(tmp_path: Path, log_format: str) -> None:
    request = fixture(_REQUEST)
    done = _run(tmp_path, "evaluate", str(FIXTURES / _REQUEST), log_format=log_format)
    assert done.returncode == 2, done.stderr  # order-sign needs the conditions it cannot have, as a 412
    lines = [line for line in done.stderr.splitlines() if not line.startswith("cds-service evaluate:")]
    assert any("prefetch conditions holds an OperationOutcome" in line for line in lines), done.stderr
    if log_format == "json":
        assert all(json.loads(line).get("hookInstance") == request["hookInstance"] for line in lines), done.stderr
    else:
        assert all(f"[{request['hookInstance']}]: " in line for line in lines), done.stderr
    assert "fetching it" not in done.stderr
    assert "read as not sent; it cannot be fetched" in done.stderr
    assert request["context"]["patientId"] not in done.stderr


def test_a_text_line_of_no_hook_call_says_a_dash(tmp_path: Path) -> None:
    done = _run(tmp_path, "migrate", log_format="text")
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stderr.splitlines() if "database created" in line]
    assert " INFO cds_service.storage.migrations [-]: database created" in line
    assert "[None]" not in done.stderr
