"""The OpenAPI document's ``context.patientId`` says what the service takes, and no more.

It stated only its length, 1 to 263 characters (an id of up to 255 with "Patient/" before it), so
schemathesis sent "." and ".." (path steps: "Patient/.." would read the FHIR server's base) and a
bare id of 256 to 263 characters, each schema-valid and each a 400 (``make fuzz``, order-select
positive). The document now states it with a pattern too: no id of dots alone, with "Patient/" or
without, and no bare id over 255 characters. The service checks it as before.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT

CASES = [
    "x",
    "Patient/x",
    ".",
    "..",
    "...",
    "Patient/.",
    "Patient/..",
    "Patient/",
    "Patient",
    "a.",
    ".a",
    "Patient/.a",
    "Patient/Patient/..",
    "a" * 255,
    "a" * 256,
    "a" * 263,
    "Patient/" + "a" * 255,
    "Patient/" + "a" * 256,
]


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


@pytest.fixture(scope="module")
def published(client: TestClient) -> dict[str, Any]:
    """``context.patientId`` as the document states it, the same for both hooks."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    select, sign = (schemas[name]["properties"]["patientId"] for name in ("OrderSelectContext", "OrderSignContext"))
    assert select == sign
    return dict(select)


def taken(client: TestClient, patient_id: str) -> bool:
    """Does the service take ``patient_id``? An order-select with no drafts: nothing else to refuse."""
    request = {
        "hook": "order-select",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"patientId": patient_id, "userId": "Practitioner/1"},
    }
    status = client.post(SELECT, json=request).status_code
    assert status in (200, 400), status
    return status == 200


def _shortened(case: str) -> str:
    return re.sub("a{20,}", lambda run: f"a*{len(run[0])}", case)


@pytest.mark.parametrize("patient_id", CASES, ids=_shortened)
def test_the_published_patient_id_allows_what_the_service_takes_and_no_more(
    client: TestClient, published: dict[str, Any], patient_id: str
) -> None:
    allowed = published["minLength"] <= len(patient_id) <= published["maxLength"] and bool(
        re.search(published.get("pattern", ""), patient_id)
    )
    assert allowed == taken(client, patient_id), patient_id


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_reads_the_published_pattern_with_and_without_u_as_the_service_does(
    client: TestClient, published: dict[str, Any]
) -> None:
    """A JSON Schema pattern is ECMA-262's, compiled with the ``u`` flag or without it."""
    script = """
        const pattern = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const cases = JSON.parse(process.argv[1]);
        const read = (flags) => { const r = new RegExp(pattern, flags); return cases.map((c) => r.test(c)); };
        console.log(JSON.stringify({ "": read(""), u: read("u") }));
    """
    pattern = json.dumps(published.get("pattern", ""))
    ran = subprocess.run(
        ["node", "-e", script, json.dumps(CASES)], input=pattern, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    expected = [taken(client, case) for case in CASES]  # the pattern alone bounds the id
    assert json.loads(ran.stdout) == {"": expected, "u": expected}
