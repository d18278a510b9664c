"""The card limit (``CDS_MAX_CARDS``): at the limit every card shows; over it, the first cards show
and one notice counts the rest by indicator, as severe as the most severe of them, and says how
many were found in all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture

# A 70-year-old with a first-degree AV block and angle-closure glaucoma, taking sertraline, who
# took cyclobenzaprine a month ago: five warnings, then two info cards (refractory spasm, class switch).
FOUR_CARDS = "multiple-rules/av-block-first-degree-sertraline-70-v2-caution.json"
GLAUCOMA = "cyclobenzaprine-anticholinergic-caution/fires-acute-angle-closure-glaucoma-h40-211-under-h40-2.json"
AGAIN = "muscle-relaxant-class-switch/fires-cyclobenzaprine-again.json"
LIMIT = "card-limit"


def seven_cards() -> dict[str, Any]:
    request = fixture(FOUR_CARDS)
    request["prefetch"]["conditions"]["entry"] += fixture(GLAUCOMA)["prefetch"]["conditions"]["entry"]
    for entry in fixture(AGAIN)["prefetch"]["medications"]["entry"]:
        entry["resource"]["subject"] = {"reference": f"Patient/{request['context']['patientId']}"}
        request["prefetch"]["medications"]["entry"].append(entry)
    return request


def answered(client: TestClient) -> list[dict[str, Any]]:
    response = client.post(SELECT, json=seven_cards())
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


@pytest.fixture
def full(make_client: Callable[..., TestClient]) -> list[dict[str, Any]]:
    cards = answered(make_client())
    assert [card["indicator"] for card in cards] == ["warning"] * 5 + ["info"] * 2
    return cards


def test_at_the_limit_every_card_shows(make_client: Callable[..., TestClient], full: list[dict[str, Any]]) -> None:
    assert [card["summary"] for card in answered(make_client(max_cards=7))] == [card["summary"] for card in full]


@pytest.mark.parametrize(
    ("max_cards", "not_shown", "indicator"), [(4, "2 warning, 2 info", "warning"), (6, "2 info", "info")]
)
def test_over_the_limit_one_notice_counts_the_rest(
    make_client: Callable[..., TestClient], full: list[dict[str, Any]], max_cards: int, not_shown: str, indicator: str
) -> None:
    """The notice is as severe as the most severe card left out, and counts only the indicators
    they have."""
    cards = answered(make_client(max_cards=max_cards))
    *shown, notice = cards
    assert [card["summary"] for card in shown] == [card["summary"] for card in full[: max_cards - 1]]
    assert notice["source"]["topic"]["code"] == LIMIT and notice["indicator"] == indicator
    assert f"found {len(full)} for the orders under review. Not shown: {not_shown} (" in notice["detail"]


def test_a_notice_keeps_its_place_over_the_limit(make_client: Callable[..., TestClient]) -> None:
    """A record with no birth date: six cards and the notice saying the older adults' checks did
    not run, which keeps its place, within the limit, after the count of the cards not shown."""
    request = seven_cards()
    del request["prefetch"]["patient"]["birthDate"]
    response = make_client(max_cards=4).post(SELECT, json=request)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert [card["source"]["topic"]["code"] for card in cards][-2:] == [LIMIT, "partial-history"]
    assert len(cards) == 4
    assert cards[-2]["summary"].startswith("4 more cards")
    assert cards[-1]["summary"] == "The patient's birth date is not recorded: the checks for older adults did not run"
