"""A prefetch key holding what another key's search answers is read where it belongs.

Conditions sent under ``medications`` were no conditions (the red flag's card went missing with
no word), and a medication history holding only Conditions read as no medication. They are now
read as the key whose search answers them; a key whose own search's answer was never sent is
said as read in part; what a search may include beside its own (a Medication, its outcome, a
Provenance) is, as before, no notice.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, fixture, rule_ids
from tests.test_statuses_unread import DUPLICATE, NOT_READ, RED_FLAG, notice


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def entries(name: str, key: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = fixture(name)["prefetch"][key]["entry"]
    return found


def test_a_condition_sent_beside_the_orders_is_read(module: TestClient) -> None:
    request = fixture(DUPLICATE)
    request["prefetch"]["medications"]["entry"] += entries(RED_FLAG, "conditions")
    found = rule_ids(answered(module, request))
    assert "back-pain-red-flag" in found and "muscle-relaxant-duplicate" in found and "partial-history" not in found


def test_an_order_sent_beside_the_conditions_is_read(module: TestClient) -> None:
    request = fixture(RED_FLAG)
    request["prefetch"]["conditions"]["entry"] += entries(DUPLICATE, "medications")
    found = rule_ids(answered(module, request))
    assert "back-pain-red-flag" in found and "muscle-relaxant-duplicate" in found and "partial-history" not in found


def test_swapped_keys_are_read_whole_and_said_by_nobody(module: TestClient) -> None:
    request = fixture(RED_FLAG)
    prefetch = request["prefetch"]
    prefetch["medications"]["entry"] = prefetch["conditions"]["entry"]
    prefetch["conditions"]["entry"] = entries(DUPLICATE, "medications")
    found = rule_ids(answered(module, request))
    assert "back-pain-red-flag" in found and "muscle-relaxant-duplicate" in found and "partial-history" not in found


def test_a_medication_history_holding_only_conditions_is_said_not_read(module: TestClient) -> None:
    """The conditions' search sent under both keys: the medication history was never sent (and
    the same for the orders' search sent under both)."""
    request = fixture(RED_FLAG)
    request["prefetch"]["medications"]["entry"] = entries(RED_FLAG, "conditions")
    body = answered(module, request)
    assert "back-pain-red-flag" in rule_ids(body)
    card = notice(body)
    assert card["summary"] == NOT_READ
    assert "Not all of the patient's medication history could be read." in card["detail"]


def test_what_a_medication_search_includes_is_no_notice(module: TestClient) -> None:
    """A Medication (``_include``), the search's own outcome, a Provenance: a history as sent."""
    request = fixture(DUPLICATE)
    request["prefetch"]["medications"]["entry"] += [
        {"resource": {"resourceType": "Medication", "id": "m1"}, "search": {"mode": "include"}},
        {
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "information", "code": "informational"}],
            },
            "search": {"mode": "outcome"},
        },
        {"resource": {"resourceType": "Provenance", "id": "p1"}, "search": {"mode": "include"}},
    ]
    found = rule_ids(answered(module, request))
    assert "muscle-relaxant-duplicate" in found and "partial-history" not in found


def test_a_condition_list_holding_only_orders_is_said_not_read(module: TestClient) -> None:
    request = fixture(DUPLICATE)
    request["prefetch"]["conditions"]["entry"] = entries(DUPLICATE, "medications")
    body = answered(module, request)
    assert "muscle-relaxant-duplicate" in rule_ids(body)
    assert "Not all of the patient's conditions could be read." in notice(body)["detail"]
