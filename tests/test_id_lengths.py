"""Ids up to 255 characters (what real EHRs send, and what the R4B models allow) are read
wherever an id is sent: a draft's, a selection's and the context's patient; one character more is
a 400 naming the field. A selection is ``Type/id``: a type that does not start with a capital or
no id at all names no draft, and is refused rather than left unreviewed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture, for_patient, rule_ids

SANDBOX = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
DURATION = "cyclobenzaprine-duration"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def with_draft_id(draft_id: str) -> dict[str, Any]:
    """The sandbox's 30-day order under ``draft_id``, selected by it."""
    request = fixture(SANDBOX)
    request["context"]["draftOrders"]["entry"][0]["resource"]["id"] = draft_id
    request["context"]["selections"] = [f"MedicationRequest/{draft_id}"]
    return request


def refused(response: Any) -> list[str]:
    """The fields a 400's OperationOutcome names, each also in its diagnostics."""
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert issue["code"] == "invalid"
    for field in issue["expression"]:
        assert field in issue["diagnostics"]
    return issue["expression"]


def test_a_draft_id_of_255_characters_is_selected_and_reviewed(client: TestClient) -> None:
    response = client.post(SELECT, json=with_draft_id("a" * 255))
    assert response.status_code == 200, response.text
    assert DURATION in rule_ids(response.json())


@pytest.mark.parametrize("draft_id", ["req_1", "req:1", "REQ~1", "req 1", "réq-1", "req/1"])
def test_a_draft_id_no_fhir_id_is_selected_and_reviewed_as_order_sign_reviews_it(
    client: TestClient, draft_id: str
) -> None:
    """An underscore is no FHIR id's, and the draft is reviewed all the same (order-sign's
    answer): its selection was a 400, the call's cards, critical ones too, lost (a conformance
    review)."""
    response = client.post(SELECT, json=with_draft_id(draft_id))
    assert response.status_code == 200, response.text
    assert DURATION in rule_ids(response.json())


def test_a_draft_id_of_256_characters_is_400_naming_the_selection_and_the_draft(client: TestClient) -> None:
    assert refused(client.post(SELECT, json=with_draft_id("a" * 256))) == ["context.selections", "context.draftOrders"]


@pytest.mark.parametrize(
    "selection",
    ["MedicationRequest/", "medicationRequest/request-123", "MedicationRequest/request\t123", "MedicationRequest"],
)
def test_a_selection_not_of_the_form_type_slash_id_is_400(client: TestClient, selection: str) -> None:
    request = fixture(SANDBOX)
    request["context"]["selections"] = [selection]
    assert refused(client.post(SELECT, json=request)) == ["context.selections"]


@pytest.mark.parametrize("version", ["/_history/2", "/_history/"])
def test_a_selection_naming_a_version_of_the_draft_is_400_naming_the_item(client: TestClient, version: str) -> None:
    """CDS Hooks names a draftOrders entry by Type/id: "MedicationRequest/request-123/_history/2"
    was read as the id "request-123/_history/2", named no draft, and the call answered no cards,
    the draft unreviewed (an adversarial review), where an absolute URL was a 400."""
    request = fixture(SANDBOX)
    request["context"]["selections"] = [request["context"]["selections"][0] + version]
    response = client.post(SELECT, json=request)
    assert refused(response) == ["context.selections"]
    assert "item 0 (" in response.text and "names a version (/_history/): a draft is named by Type/id" in response.text


@pytest.mark.parametrize(
    ("ending", "said"),
    [("/_history", "names a history (/_history)"), ("/", 'ends in "/"')],
)
def test_a_selection_naming_a_history_or_ending_in_a_slash_is_400_naming_the_item(
    client: TestClient, ending: str, said: str
) -> None:
    """A selection "MedicationRequest/request-123/_history" or "MedicationRequest/request-123/" names no
    draft: answered 200 with no cards, the draft unreviewed (an adversarial review), where the
    same selection with a version was a 400."""
    request = fixture(SANDBOX)
    request["context"]["selections"] = [request["context"]["selections"][0] + ending]
    response = client.post(SELECT, json=request)
    assert refused(response) == ["context.selections"]
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert "item 0 (" in diagnostics and f"{said}: a draft is named by Type/id" in diagnostics


def test_the_published_selection_pattern_refuses_what_the_service_refuses(client: TestClient) -> None:
    """The OpenAPI document's pattern for a selection: a client validating against it is told
    of a history or a trailing "/" before it sends the call."""
    schema = client.get("/openapi.json").json()
    patterns = [found for found in _patterns(schema) if "_history" in found]
    assert patterns
    for pattern in patterns:
        compiled = re.compile(pattern)
        assert compiled.search("MedicationRequest/request-123")
        for bad in ("MedicationRequest/request-123/_history", "MedicationRequest/request-123/"):
            assert not compiled.search(bad), (pattern, bad)


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [found for value in node.values() for found in _patterns(value)]
    if isinstance(node, list):
        return [found for value in node for found in _patterns(value)]
    return []


@pytest.mark.parametrize("prefix", ["", "Patient/"])
def test_a_patient_id_of_255_characters_is_read_with_or_without_its_type(client: TestClient, prefix: str) -> None:
    request = for_patient(fixture(SANDBOX), "p" * 255)
    request["context"]["patientId"] = prefix + "p" * 255
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert rule_ids(response.json()) == [DURATION]  # the drafts are the patient's: no notice


@pytest.mark.parametrize("prefix", ["", "Patient/"])
def test_a_patient_id_of_256_characters_is_400_naming_it(client: TestClient, prefix: str) -> None:
    """Bare or as a reference: the bound is the id's, as everywhere (not 255 plus "Patient/")."""
    request = for_patient(fixture(SANDBOX), "p" * 256)
    request["context"]["patientId"] = prefix + "p" * 256
    assert refused(client.post(SELECT, json=request)) == ["context.patientId"]


@pytest.mark.parametrize("patient_id", [".", "..", "Patient/..", "...", "Patient/"])
def test_a_patient_id_of_dots_alone_or_none_is_400_naming_it(client: TestClient, patient_id: str) -> None:
    """ "." and ".." are path steps: put into Patient/{id} and Condition?patient={id}, the FHIR
    reads asked the server's base and every patient's records, with the EHR's token (an
    adversarial review)."""
    request = fixture(SANDBOX)
    request["context"]["patientId"] = patient_id
    assert refused(client.post(SELECT, json=request)) == ["context.patientId"]


@pytest.mark.parametrize("patient_id", ["p.1", ".p", "p.."])
def test_a_patient_id_with_dots_among_other_characters_is_read(client: TestClient, patient_id: str) -> None:
    response = client.post(SELECT, json=for_patient(fixture(SANDBOX), patient_id))
    assert response.status_code == 200, response.text
    assert rule_ids(response.json()) == [DURATION]
