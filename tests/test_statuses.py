"""What a status makes of an order: a withdrawn draft is no order, a withdrawn study no imaging,
a therapy order only pending (active, draft, on hold) is therapy under way. The statuses a test
leaves out are those a mutation audit could drop unseen."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture, rule_ids


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def first(request: dict[str, Any], key: str) -> dict[str, Any]:
    resource: dict[str, Any] = request["prefetch"][key]["entry"][0]["resource"]
    return resource


@pytest.mark.parametrize(("status", "reviewed"), [("draft", True), ("cancelled", False), ("revoked", False)])
def test_a_withdrawn_draft_is_not_reviewed(client: TestClient, status: str, reviewed: bool) -> None:
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request["context"]["draftOrders"]["entry"][0]["resource"]["status"] = status
    assert ("cyclobenzaprine-duration" in rule_ids(client.post(SELECT, json=request).json())) is reviewed


@pytest.mark.parametrize(
    ("status", "counts"), [("completed", True), ("entered-in-error", False), ("revoked", False), ("cancelled", False)]
)
def test_a_withdrawn_mri_is_no_recent_imaging(client: TestClient, status: str, counts: bool) -> None:
    request = fixture("refractory-spasm-imaging/silent-recent-mri.json")
    first(request, "imaging")["status"] = status
    assert ("refractory-spasm-imaging" in rule_ids(client.post(SELECT, json=request).json())) is not counts


@pytest.mark.parametrize(
    ("status", "under_way"), [("active", True), ("draft", True), ("on-hold", True), ("completed", False)]
)
def test_physical_therapy_only_pending_is_under_way(client: TestClient, status: str, under_way: bool) -> None:
    request = fixture("nonpharmacologic-first-line/silent-physical-therapy-ordered.json")
    first(request, "imaging")["status"] = status
    fired = "nonpharmacologic-first-line" in rule_ids(client.post(SELECT, json=request).json())
    assert fired is not under_way


HEPATIC = "cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json"


@pytest.mark.parametrize(
    ("field", "status", "stands"),
    [
        ("clinicalStatus", {"coding": [{"code": "resolved"}]}, False),
        ("clinicalStatus", {"coding": [{"code": "Inactive"}]}, False),
        ("clinicalStatus", {"coding": {"code": "remission"}}, False),
        ("clinicalStatus", [{"coding": [{"code": "resolved"}]}], False),
        ("clinicalStatus", {"coding": [{"code": "active"}]}, True),
        ("clinicalStatus", {"coding": [{"code": "relapse"}]}, True),
        ("verificationStatus", {"coding": [{"code": "entered-in-error"}]}, False),
        ("verificationStatus", {"coding": [{"code": "refuted"}]}, False),
        ("verificationStatus", {"coding": [{"code": "confirmed"}]}, True),
    ],
)
def test_a_condition_status_coded_without_its_system_is_read(
    client: TestClient, field: str, status: object, stands: bool
) -> None:
    """A status's value set has one code system: a coding that leaves it out says the same. Read
    as no status, a resolved hepatic failure stood, and its critical card was shown."""
    request = fixture(HEPATIC)
    first(request, "conditions")[field] = status
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert ("cyclobenzaprine-hepatic-impairment" in rule_ids(response.json())) is stands
