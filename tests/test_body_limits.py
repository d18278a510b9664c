"""The body limits are inclusive: a body of exactly ``CDS_MAX_BODY_BYTES`` bytes, and a request
of exactly ``CDS_MAX_ENTRIES`` Bundle entries, are read; one byte or one entry more is a 413
naming the body or the Bundles. Draft orders sent as a bare array of resources (the CDC opioid
CDS requests) count as entries like a Bundle's."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture, rule_ids

SANDBOX = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
DURATION = "cyclobenzaprine-duration"
# A draft and a history of conditions: entries in more than one Bundle.
HEPATIC = "cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json"
JSON = {"Content-Type": "application/json"}


def entries_of(request: dict[str, Any]) -> int:
    """The Bundle entries a request holds: its draft orders and its prefetch Bundles'."""
    bundles = [request["context"]["draftOrders"], *request["prefetch"].values()]
    return sum(len(b.get("entry", ())) for b in bundles if b and b.get("resourceType") == "Bundle")


def too_large(response: Any) -> dict[str, Any]:
    assert response.status_code == 413, response.text
    (issue,) = response.json()["issue"]
    return issue


@pytest.mark.parametrize(("spare", "status"), [(0, 200), (-1, 413)])
def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_not(
    make_client: Callable[..., TestClient], spare: int, status: int
) -> None:
    body = json.dumps(fixture(SANDBOX)).encode()
    client = make_client(max_body_bytes=len(body) + spare)
    response = client.post(SELECT, content=body, headers=JSON)
    assert response.status_code == status, response.text
    if status == 200:
        assert DURATION in rule_ids(response.json())
    else:
        assert too_large(response)["expression"] == ["body"]


@pytest.mark.parametrize(("spare", "status"), [(0, 200), (-1, 413)])
def test_exactly_the_most_entries_are_read_and_one_more_is_not(
    make_client: Callable[..., TestClient], spare: int, status: int
) -> None:
    request = fixture(HEPATIC)
    response = make_client(max_entries=entries_of(request) + spare).post(SELECT, json=request)
    assert response.status_code == status, response.text
    if status == 413:
        expression = too_large(response)["expression"]
        assert "context.draftOrders" in expression and "prefetch.conditions" in expression


def test_draft_orders_sent_as_an_array_count_as_entries(make_client: Callable[..., TestClient]) -> None:
    request = fixture(HEPATIC)
    limit = entries_of(request)
    request["context"]["draftOrders"] = [entry["resource"] for entry in request["context"]["draftOrders"]["entry"]]
    assert make_client(max_entries=limit).post(SELECT, json=request).status_code == 200
    issue = too_large(make_client(max_entries=limit - 1).post(SELECT, json=request))
    assert "context.draftOrders" in issue["expression"]
    assert "context.draftOrders: 1" in issue["diagnostics"]
