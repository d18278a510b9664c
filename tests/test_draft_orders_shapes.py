"""The shapes ``context.draftOrders`` is read in: a Bundle; a bare array of resources (the CDC
opioid CDS requests) or a Bundle's entries without its resourceType, read as the Bundle they stand
for. An array holding anything but resources, or an object neither a Bundle nor its entries, is a
400 naming the field. Drafts are told apart by type and id: a ServiceRequest may share its id
with a MedicationRequest, and both are reviewed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SIGN, fixture, rule_ids

SANDBOX = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
TENS = "low-value-back-therapy/fires-tens-device.json"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def signed(drafts: Any) -> dict[str, Any]:
    """The sandbox's request as order-sign (every draft reviewed), with these draft orders."""
    request = fixture(SANDBOX)
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    request["context"]["draftOrders"] = drafts
    return request


def the_draft() -> dict[str, Any]:
    return fixture(SANDBOX)["context"]["draftOrders"]["entry"][0]["resource"]


@pytest.mark.parametrize("junk", ["MedicationRequest/request-123", {"id": "request-9"}, None])
def test_an_array_holding_anything_but_resources_is_400_naming_draft_orders(client: TestClient, junk: Any) -> None:
    response = client.post(SIGN, json=signed([the_draft(), junk]))
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["context.draftOrders"] and "context.draftOrders" in issue["diagnostics"]


def test_drafts_of_two_types_may_share_an_id(client: TestClient) -> None:
    """The TENS device's request (its back pain on record) with the 30-day relaxant under its id."""
    request = fixture(TENS)
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    device = request["context"]["draftOrders"]["entry"][0]["resource"]
    request["context"]["draftOrders"]["entry"].append({"resource": {**the_draft(), "id": device["id"]}})
    response = client.post(SIGN, json=request)
    assert response.status_code == 200, response.text
    assert set(rule_ids(response.json())) == {"cyclobenzaprine-duration", "low-value-back-therapy"}


def test_a_bundle_without_its_resource_type_is_read_as_one(client: TestClient) -> None:
    """Its drafts are reviewed: the sandbox's 30-day order gets its duration card, as in a Bundle."""
    response = client.post(SIGN, json=signed({"entry": [{"resource": the_draft()}]}))
    assert response.status_code == 200, response.text
    assert rule_ids(response.json()) == ["cyclobenzaprine-duration"]


@pytest.mark.parametrize(
    "drafts", [{}, {"id": "request-123", "status": "draft"}, {"resourceType": "MedicationRequest"}]
)
def test_an_object_that_is_not_a_bundle_is_400_naming_draft_orders(client: TestClient, drafts: Any) -> None:
    """Neither a Bundle nor its entries: refused, never read as no drafts (and so no cards)."""
    response = client.post(SIGN, json=signed(drafts))
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["context.draftOrders"] and "must be a FHIR Bundle" in issue["diagnostics"]


@pytest.mark.parametrize(
    ("entries", "where"),
    [
        ("request-123", "entry must be an array"),
        ([{"resource": the_draft()}, "MedicationRequest/request-9"], "entry[1] must be an entry"),
        ([{"fullUrl": "urn:uuid:7"}, {"resource": the_draft()}], "entry[0].resource must be a FHIR resource"),
    ],
    ids=["entry-a-string", "an-entry-a-reference", "an-entry-without-a-resource"],
)
def test_a_bundle_holding_anything_but_entries_of_resources_is_400_naming_the_entry(
    client: TestClient, entries: Any, where: str
) -> None:
    """As the bare array is: such an entry was passed over, and the drafts beside it reviewed
    as though it were not there."""
    response = client.post(SIGN, json=signed({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["context.draftOrders"] and where in issue["diagnostics"]


def test_a_draft_without_its_resource_type_is_400_not_passed_over(client: TestClient) -> None:
    """The sandbox's 30-day order without its resourceType got no card, as if checked and clear."""
    draft = the_draft()
    del draft["resourceType"]
    response = client.post(
        SIGN, json=signed({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]})
    )
    assert response.status_code == 400, response.text
    assert (
        "entry[0].resource must be a FHIR resource with its resourceType" in response.json()["issue"][0]["diagnostics"]
    )
