"""Suggestions compose per order (clinical specification §2): the duration limit one draft's card
carries goes into that draft's own 5 mg swap, never into the swap of another draft signed with it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SIGN, cards_for, fixture

OLDER_ADULT = "cyclobenzaprine-older-adult"
DURATION = "cyclobenzaprine-duration"
# 70 years old, 10 mg three times a day for 30 days: the older-adult swap and the duration card.
CONTAINED_SWAP = "multiple-rules/older-adult-contained-10mg-medication-swap-leaves-no-orphan.json"


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def two_drafts() -> dict[str, Any]:
    """Signing the 30-day draft (request-123) with a copy for 14 days (request-456)."""
    request = fixture(CONTAINED_SWAP)
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    short = copy.deepcopy(request["context"]["draftOrders"]["entry"][0])
    short["resource"]["id"] = "request-456"
    short["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] = 14
    request["context"]["draftOrders"]["entry"].append(short)
    return request


def swap_of(body: dict[str, Any], draft_id: str) -> dict[str, Any]:
    """The 5 mg swap the older-adult card for ``draft_id`` offers."""
    [swap] = [
        suggestion
        for card in cards_for(body, OLDER_ADULT)
        for suggestion in card["suggestions"]
        if suggestion["actions"][0]["type"] == "update" and suggestion["actions"][0]["resource"]["id"] == draft_id
    ]
    return swap


def test_the_duration_limit_goes_into_the_swap_of_its_own_draft_only(module: TestClient) -> None:
    response = module.post(SIGN, json=two_drafts())
    assert response.status_code == 200, response.text
    body = response.json()
    [duration] = cards_for(body, DURATION)
    assert duration["suggestions"][0]["actions"][0]["resource"]["id"] == "request-123"
    limited = swap_of(body, "request-123")
    assert limited["label"].endswith("(limited to 21 days)")
    assert limited["actions"][0]["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] == 21
    unlimited = swap_of(body, "request-456")
    assert "limited" not in unlimited["label"]
    assert unlimited["actions"][0]["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] == 14
