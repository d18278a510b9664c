"""A card leaves out only the suggestions its draft cannot take, and says why once: a draft
without an id can be neither updated nor deleted; one the R4 model rejects cannot be sent back
as an update, though it can still be removed by its id."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.facts.orders import LAST_YEAR_REASON, NO_ID_REASON, NONPOSITIVE_REASON, UNSOUND_REASON
from tests.conftest import answered, cards_for, fixture

OLDER_ADULT = "cyclobenzaprine-older-adult"
# 70 years old, 10 mg three times a day for 30 days: the older-adult warning offers the 5 mg swap
# (an update) and the removal (a delete).
CONTAINED_SWAP = "multiple-rules/older-adult-contained-10mg-medication-swap-leaves-no-orphan.json"


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def older_adult_card(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    [card] = cards_for(answered(client, request), OLDER_ADULT)
    return card


def test_a_draft_without_an_id_says_once_why_neither_choice_is_offered(module: TestClient) -> None:
    request = fixture(CONTAINED_SWAP)
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    del request["context"]["draftOrders"]["entry"][0]["resource"]["id"]
    card = older_adult_card(module, request)
    assert "suggestions" not in card
    assert card["detail"].count(NO_ID_REASON) == 1


def test_a_draft_the_r4_model_rejects_keeps_the_removal_but_not_the_swap(module: TestClient) -> None:
    """The draft without its required ``intent``: the swap would send it back as sent, unsound."""
    request = fixture(CONTAINED_SWAP)
    del request["context"]["draftOrders"]["entry"][0]["resource"]["intent"]
    full = older_adult_card(module, fixture(CONTAINED_SWAP))
    assert {s["actions"][0]["type"] for s in full["suggestions"]} == {"update", "delete"}
    card = older_adult_card(module, request)
    assert [[a["type"] for a in s["actions"]] for s in card["suggestions"]] == [["delete"]]
    assert card["detail"].count(UNSOUND_REASON) == 1


# A first fill's length of zero or less: kept as sent in the update (``_first_fill_within`` only
# shortens one longer than the limit), it said "first fill: -5 days".
_DAYS_LESS_5 = {"value": -5, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}


# A rate or a maximum dose of zero or less: kept as sent in the update ("max -1 tablet a day").
_LESS_1 = {"value": -1, "unit": "tablet"}


def _dosage(draft: dict[str, Any]) -> dict[str, Any]:
    dosage: dict[str, Any] = draft["dosageInstruction"][0]
    return dosage


def _repeat(draft: dict[str, Any]) -> dict[str, Any]:
    repeat: dict[str, Any] = draft["dosageInstruction"][0]["timing"]["repeat"]
    return repeat


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda d: d["dispenseRequest"]["quantity"].update(value=-90), id="quantity-negative"),
        pytest.param(lambda d: d["dispenseRequest"]["quantity"].update(value=0), id="quantity-zero"),
        pytest.param(lambda d: _repeat(d).update(period=0), id="period-zero"),
        pytest.param(lambda d: _repeat(d).update(period=-1), id="period-negative"),
        pytest.param(lambda d: _repeat(d).update(periodMax=-2), id="period-max-negative"),
        pytest.param(lambda d: _repeat(d).update(duration=-1, durationUnit="h"), id="duration-negative"),
        pytest.param(
            lambda d: d["dispenseRequest"].update(initialFill={"duration": _DAYS_LESS_5}), id="first-fill-days"
        ),
        pytest.param(lambda d: _dosage(d)["doseAndRate"][0].update(rateQuantity=_LESS_1), id="rate-negative"),
        pytest.param(
            lambda d: _dosage(d).update(maxDosePerPeriod={"numerator": _LESS_1, "denominator": {"value": 1}}),
            id="max-per-period-negative",
        ),
        pytest.param(lambda d: _dosage(d).update(maxDosePerAdministration=_LESS_1), id="max-per-dose-negative"),
    ],
)
def test_a_draft_with_an_amount_of_zero_or_less_is_offered_no_update(module: TestClient, spoil: Any) -> None:
    """A dispensed quantity, a period or an administration's duration of zero or less (the R4
    model takes a negative decimal) was sent back in the one-click swap as sent: "dispense -90"
    became the limit every update keeps under, and "3 times every 0 days" the new order's timing.
    Such a draft is offered its removal only, as one with a dose of zero or less is."""
    request = fixture(CONTAINED_SWAP)
    spoil(request["context"]["draftOrders"]["entry"][0]["resource"])
    card = older_adult_card(module, request)
    assert [[a["type"] for a in s["actions"]] for s in card["suggestions"]] == [["delete"]]
    assert card["detail"].count(NONPOSITIVE_REASON) == 1


@pytest.mark.parametrize("start", ["9999-12-25T10:00:00Z", "9999-01-01"])
def test_a_draft_dated_in_the_year_9999_is_offered_no_update(module: TestClient, start: str) -> None:
    """No course counted from the calendar's last year ends within it: "Limit to 21 days" from 25
    December 9999, no end said, was cut at the calendar's end and dispensed 7 tablets for 21 days.
    The dates are the order's to correct; a draft of 2026 is offered both choices (above)."""
    request = fixture(CONTAINED_SWAP)
    _dosage(request["context"]["draftOrders"]["entry"][0]["resource"])["timing"]["repeat"]["boundsPeriod"] = {
        "start": start
    }
    card = older_adult_card(module, request)
    assert [[a["type"] for a in s["actions"]] for s in card["suggestions"]] == [["delete"]]
    assert card["detail"].count(LAST_YEAR_REASON) == 1
