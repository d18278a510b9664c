"""What a FHIR server answers that the service does not take: an answer over the size limit
whether or not its length is declared, an OperationOutcome too large to read, an answer that is
no JSON object, nests deeper than FHIR does or holds an entry of no resource (or of no FHIR
type: "condition"). Each is a failed fetch (a 412 for the keys the service needs), never a 500
or a key read as empty. And the environment's proxies, which the service does not use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fetching_request, rule_ids
from tests.fhir_server import FhirTestServer
from tests.test_prefetch import assert_412

LIMIT = 16 * 1024  # the largest request body, and so the largest FHIR answer, read


def _conditions(count: int) -> list[dict[str, Any]]:
    """Low back pain recorded ``count`` times: an answer of ~300 bytes an entry."""
    coding = {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.50", "display": "Low back pain, unspecified"}
    return [
        {
            "resourceType": "Condition",
            "id": f"pain-{i}",
            "subject": {"reference": "Patient/harness-pt-1"},
            "code": {"coding": [coding]},
            "onsetDateTime": "2026-10-01",
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("chunked", [False, True], ids=["length-declared", "chunked"])
def test_an_answer_over_the_size_limit_is_a_failed_fetch_whether_or_not_its_length_is_declared(
    make_client: Callable[..., TestClient], fhir_server: FhirTestServer, chunked: bool
) -> None:
    """A streaming server declares no length: the answer is counted as it arrives and dropped
    past the limit, or a server could fill the service's memory."""
    fhir_server.add(*_conditions(LIMIT // 300 * 2))
    fhir_server.page_size, fhir_server.chunked = 1000, chunked
    client = make_client(max_body_bytes=LIMIT)
    assert_412(client.post(SELECT, json=fetching_request(fhir_server.base)), "conditions")
    fhir_server.resources = [r for r in fhir_server.resources if not str(r["id"]).startswith("pain-")]
    assert client.post(SELECT, json=fetching_request(fhir_server.base)).status_code == 200  # the rest read


def test_an_outcome_too_large_to_read_is_a_failed_fetch_not_a_type_the_server_lacks(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """A 404's OperationOutcome is read for why (no such type: no data) up to 64 KiB; one past
    that is not read, and the search failed. (The server's /metadata does not answer: a type its
    statement lists is never "no such type", whatever its error says: tests/test_listed_types.py.)"""
    fhir_server.metadata = False
    unknown = fhir_server.unknown_type("Condition")
    unknown[1]["issue"][0]["diagnostics"] += " " * (64 * 1024)
    fhir_server.canned["Condition"] = unknown
    assert_412(client.post(SELECT, json=fetching_request(fhir_server.base)), "conditions")
    fhir_server.canned["Condition"] = fhir_server.unknown_type("Condition")  # small enough: no data
    assert client.post(SELECT, json=fetching_request(fhir_server.base)).status_code == 200


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"resourceType": "Condition", "id": "deep"}
    for _ in range(depth):
        value = {"extension": [value]}
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": value}]}


_SEARCHSET = {"resourceType": "Bundle", "type": "searchset"}
_NO_RESOURCES = [
    {**_SEARCHSET, "entry": "Condition/liver-1"},
    {**_SEARCHSET, "entry": [{"fullUrl": "http://ehr.example/fhir/Condition/liver-1"}]},
    {**_SEARCHSET, "entry": [{"resource": {"id": "liver-1", "code": {"text": "Chronic hepatitis C"}}}]},
    {**_SEARCHSET, "entry": [{"resource": {"resourceType": "condition", "id": "liver-1"}}]},  # no FHIR type
]


@pytest.mark.parametrize(
    "answer",
    [[], "a Bundle", _nested(100), *_NO_RESOURCES],
    ids=[
        "array",
        "string",
        "nested-100-deep",
        "entry-a-string",
        "an-entry-without-a-resource",
        "an-untyped-resource",
        "a-resource-of-no-fhir-type",
    ],
)
def test_an_answer_that_is_no_json_object_or_nests_too_deep_is_a_failed_fetch(
    client: TestClient, fhir_server: FhirTestServer, answer: Any
) -> None:
    fhir_server.canned["Condition"] = (200, answer)
    assert_412(client.post(SELECT, json=fetching_request(fhir_server.base)), "conditions")


def test_the_environments_proxies_are_not_used(
    make_client: Callable[..., TestClient], fhir_server: FhirTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``HTTP_PROXY`` names a proxy that is not there: the FHIR server is still reached directly
    (only ``CDS_OUTBOUND_PROXY`` names a proxy)."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    client = make_client()
    body = client.post(SELECT, json=fetching_request(fhir_server.base)).json()
    assert "cyclobenzaprine-duration" in rule_ids(body)
    assert fhir_server.searched("Condition")
