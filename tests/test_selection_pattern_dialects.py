"""The OpenAPI document's Selection pattern as ECMA-262 reads it, with and without the ``u`` flag.

A JSON Schema pattern is ECMA-262's, and a JavaScript validator or generator may compile it
without ``u``, reading the text as UTF-16 units: the pattern listed the invisible characters above
the BMP (the tag characters, U+E0020–E007F, and others) in a class as the characters themselves,
each two units there, so a range ran from one unit to another (``\\uDC20-\\uDB40``), out of order,
and such a tool refused the whole document (a code review). The published pattern must still say
what the service takes: an id holding an invisible character above the BMP is a 400, one holding
a visible one (an emoji) is not. Python's ``re``, given the pattern and the text each as UTF-16
units, reads them as ECMA without ``u`` does; node, where installed, is asked as well.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT
from tests.test_resource_types import selecting

# The draft's own id, then one character: invisible ones (a 400: padded, naming no draft) at the
# ends of each run above the BMP, and visible ones beside them (taken, as any odd id is).
CASES = [
    "MedicationRequest/request-123",
    "MedicationRequest/request-123\u00ad",
    *(f"MedicationRequest/request-123{chr(point)}" for point in (0x110BD, 0x13430, 0x1BCA3, 0x1D173, 0x1D17A)),
    *(f"MedicationRequest/request-123{chr(point)}" for point in (0xE0001, 0xE0020, 0xE007F, 0xE0100, 0xE01EF)),
    *(f"MedicationRequest/request-123{chr(point)}" for point in (0x10000, 0x1F600, 0xE001F, 0xE0080, 0xE01F0)),
    "MedicationRequest/\U000e0020request-123",
]


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


@pytest.fixture(scope="module")
def pattern(client: TestClient) -> str:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    return str(schemas["Selection"]["pattern"])


def as_units(text: str) -> str:
    """``text`` as ECMA-262 without ``u`` reads it: one character a UTF-16 unit (surrogates alone).
    Never shown as it is in a failure: a lone surrogate cannot be reported (``ascii`` it)."""
    return "".join(map(chr, memoryview(text.encode("utf-16-le")).cast("H")))


def without_u(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(as_units(pattern))
    except re.error as error:
        problem = ascii(str(error))  # raised outside, so its surrogates are not reported
    pytest.fail(f"not valid read as UTF-16 units: {problem}")


def test_no_class_of_the_pattern_holds_half_a_character(pattern: str) -> None:
    """Without ``u``, a character above the BMP in a class is two members, each half of it."""
    classes = re.findall(r"\[(?:\\.|[^\]\\])*\]", as_units(pattern))
    assert classes
    halves = [ascii(found) for found in classes if re.search("[\ud800-\udfff]", found)]
    assert not halves, halves


@pytest.mark.parametrize("selection", CASES)
def test_the_pattern_read_as_utf16_units_agrees_with_the_service(
    client: TestClient, pattern: str, selection: str
) -> None:
    taken = client.post(SELECT, json=selecting(selection)).status_code != 400
    read = bool(without_u(pattern).search(as_units(selection))), bool(re.search(pattern, selection))
    assert read == (taken, taken), (ascii(selection), taken)  # without ``u``, and as with it


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_compiles_the_published_pattern_with_and_without_u_and_agrees_with_the_service(
    client: TestClient,
) -> None:
    """Through the document's own JSON, as a JavaScript tool reads it."""
    document = client.get("/openapi.json").text
    taken = {selection: client.post(SELECT, json=selecting(selection)).status_code != 400 for selection in CASES}
    script = """
        const pattern = JSON.parse(require("fs").readFileSync(0, "utf8")).components.schemas.Selection.pattern;
        const cases = JSON.parse(process.argv[1]);
        const read = (flags) => { const r = new RegExp(pattern, flags); return cases.map((c) => r.test(c)); };
        console.log(JSON.stringify({ "": read(""), u: read("u") }));
    """
    ran = subprocess.run(
        ["node", "-e", script, json.dumps(CASES)], input=document, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    expected = [taken[selection] for selection in CASES]
    assert json.loads(ran.stdout) == {"": expected, "u": expected}
