"""A draft's cost follows its size (an adversarial review): a draft of 300,000 empty extensions,
a 0.9 MB call, was answered after 11–14 s and 670 MB, the R4 model checking each extension at
some 40 µs before an update could be offered, and 15,000 valid ones took 1.1 s. A draft of more
JSON values than any real order holds is not put to the model: it is reviewed as any other, and
its card offers no update, saying why. The tests assert the answers, never time."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.facts.orders import OVER_BUDGET_REASON, TOO_LARGE_REASON, UNSOUND_REASON
from cds_service.fhir.models import CALL_MODEL_VALUES, MODEL_VALUES
from tests.conftest import answered, cards_for, fixture

SANDBOX = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
DURATION = "cyclobenzaprine-duration"
# 70 years old, 10 mg three times a day for 30 days: the 5 mg swap (an update) and the removal.
CONTAINED_SWAP = "multiple-rules/older-adult-contained-10mg-medication-swap-leaves-no-orphan.json"
OLDER_ADULT = "cyclobenzaprine-older-adult"
# An extension R4 accepts: three JSON values (itself, its url, its value).
VALID = {"url": "http://example.org/fhir/StructureDefinition/note", "valueString": "a"}


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def with_extensions(name: str, extensions: list[Any]) -> dict[str, Any]:
    request = fixture(name)
    request["context"]["draftOrders"]["entry"][0]["resource"]["extension"] = extensions
    return request


def duration_card(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    (card,) = cards_for(answered(client, request), DURATION)
    return card


@pytest.mark.parametrize("count", [MODEL_VALUES, 100_000])
def test_a_draft_of_many_empty_extensions_is_reviewed_and_says_why_no_update(module: TestClient, count: int) -> None:
    """Empty extensions the model rejects (no ``url``): the card said the order was incomplete,
    after the model had checked them all (100,000: 5 s)."""
    card = duration_card(module, with_extensions(SANDBOX, [{}] * count))
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned"
    assert "suggestions" not in card
    assert card["detail"].count(TOO_LARGE_REASON) == 1 and UNSOUND_REASON not in card["detail"]


def test_a_valid_draft_too_large_to_check_is_offered_no_update(module: TestClient) -> None:
    """The model would accept it (and offered the 21-day update, after checking every value)."""
    card = duration_card(module, with_extensions(SANDBOX, [VALID] * (MODEL_VALUES // 3)))
    assert "suggestions" not in card
    assert card["detail"].count(TOO_LARGE_REASON) == 1


def test_a_draft_too_large_to_check_keeps_its_removal(module: TestClient) -> None:
    """Removing it sends nothing of it back: only the swap (an update) is left out."""
    (card,) = cards_for(answered(module, with_extensions(CONTAINED_SWAP, [{}] * MODEL_VALUES)), OLDER_ADULT)
    assert [[a["type"] for a in s["actions"]] for s in card["suggestions"]] == [["delete"]]
    assert card["detail"].count(TOO_LARGE_REASON) == 1


def test_a_draft_of_a_chain_of_thousands_of_contained_resources_is_offered_no_update(module: TestClient) -> None:
    """Each refers to the next, the first named by a note: the walk that keeps them in an update
    took a minute when each round rescanned them all (now linear; the update is still built)."""
    request = fixture(CONTAINED_SWAP)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["contained"] += [
        {"resourceType": "Basic", "id": f"b{i}", "code": {"text": "a source"}, "subject": {"reference": f"#b{i + 1}"}}
        for i in range(3000)
    ]
    draft["note"] = [{"authorReference": {"reference": "#b0"}, "text": "see the chain"}]
    card = duration_card(module, request)
    assert "suggestions" not in card and card["detail"].count(TOO_LARGE_REASON) == 1


def test_a_call_of_many_drafts_just_under_the_limit_has_only_so_many_checked(module: TestClient) -> None:
    """200 drafts of some 980 values each, every one under the per-draft limit, held a worker 5-6 s
    (35 ms a draft in the model). Past the call's budget, a draft is reviewed as any other and its
    card offers no update, saying why; the same call sent again is answered the same, though the
    process keeps the answers of the drafts checked."""
    request = with_extensions(SANDBOX, [VALID] * (MODEL_VALUES // 3 - 30))  # some 940 values
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    count = CALL_MODEL_VALUES // MODEL_VALUES + 2
    drafts = [{**draft, "id": f"{draft['id']}-{i}"} for i in range(count)]
    request["context"]["draftOrders"]["entry"] = [{"resource": d} for d in drafts]
    request["context"]["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts]
    for _ in range(2):
        cards = cards_for(answered(module, request), DURATION)
        assert len(cards) == count
        updated = [card for card in cards if "suggestions" in card]
        unchecked = [card for card in cards if "suggestions" not in card]
        assert len(updated) >= CALL_MODEL_VALUES // MODEL_VALUES and unchecked
        assert all(card["detail"].count(OVER_BUDGET_REASON) == 1 for card in unchecked)
        assert not any(OVER_BUDGET_REASON in card["detail"] for card in updated)


def test_a_draft_of_hundreds_of_values_is_still_checked_and_updated(module: TestClient) -> None:
    """Ten times the largest real draft among the fixtures (98 values) is well within the limit."""
    card = duration_card(module, with_extensions(SANDBOX, [VALID] * 250))
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    assert action["type"] == "update" and len(action["resource"]["extension"]) == 250


def test_the_log_says_the_draft_was_not_checked_and_nothing_of_the_patient(
    module: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cds_service")
    request = with_extensions(SANDBOX, [{}] * MODEL_VALUES)
    duration_card(module, request)
    [line] = [r.getMessage() for r in caplog.records if "no edit offered" in r.getMessage()]
    assert f"over {MODEL_VALUES:,} JSON values" in line and "extension" not in line
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    assert request["context"]["patientId"] not in line and draft["id"] not in line
