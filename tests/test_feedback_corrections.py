"""A second item of the same card, outcome and moment is a resend only when it says the same:
one that says something else in any field is a correction, refused naming that field, so the
client learns it was not stored (it needs its own outcomeTimestamp). And each item is counted
in the metrics by the outcome it reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.settings import Settings
from tests.feedback_calls import FEEDBACK, database_rows, issued

Card = dict[str, Any]
REASON_SYSTEM = "urn:back-spasm-cds:override-reason"


def _older_adult_card(client: TestClient) -> Card:
    """The older-adult card: two suggestions (the 5 mg swap, removing the order) and its reasons."""
    card = issued(client, "cyclobenzaprine-older-adult/fires-age-65-10mg.json")["cyclobenzaprine-older-adult"]
    assert len(card["suggestions"]) == 2
    return card


def _item(card: Card, said: Callable[[Card], dict[str, Any]], at: str = "2026-11-21T10:16:00Z") -> dict[str, Any]:
    return {"card": card["uuid"], "outcomeTimestamp": at, **said(card)}


def _reason(system: str = REASON_SYSTEM, **display: str) -> Callable[[Card], dict[str, Any]]:
    reason = {"system": system, "code": "already-addressed", **display}
    return lambda _: {"outcome": "overridden", "overrideReason": {"reason": reason}}


def _taking(suggestion: int) -> Callable[[Card], dict[str, Any]]:
    return lambda card: {
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][suggestion]["uuid"]}],
    }


@pytest.mark.parametrize(
    ("first", "then", "field"),
    [
        pytest.param(_reason(), _reason("urn:site:reasons"), "overrideReason.reason.system", id="another-system"),
        pytest.param(_reason(), _reason(display="Seen"), "overrideReason.reason.display", id="another-display"),
        pytest.param(_taking(0), _taking(1), "acceptedSuggestions", id="another-suggestion"),
    ],
)
def test_an_item_of_a_stored_moment_saying_something_else_is_refused_naming_the_field(
    client: TestClient,
    settings: Settings,
    first: Callable[[Card], dict[str, Any]],
    then: Callable[[Card], dict[str, Any]],
    field: str,
) -> None:
    """Taken as a resend, the correction was silently lost: the client was told nothing, and
    what was stored first (another reason, or the swap, which quiets its rule) stood unawares."""
    card = _older_adult_card(client)
    assert client.post(FEEDBACK, json={"feedback": [_item(card, first)]}).json() == {"received": 1, "stored": 1}
    answer = client.post(FEEDBACK, json={"feedback": [_item(card, first), _item(card, then)]}).json()
    assert (answer["received"], answer["stored"]) == (2, 0)
    [refused] = answer["refused"]
    assert refused["index"] == 1 and field in refused["reason"]
    rows = database_rows(f"sqlite:///{settings.data_dir / 'cds-service.db'}", "SELECT card_uuid FROM feedback")
    assert len(rows) == 1  # kept as first sent


def test_each_item_is_counted_by_the_outcome_it_reports(client: TestClient) -> None:
    """The metrics say how often cards are accepted and overridden: each item under its own outcome."""
    card = _older_adult_card(client)
    batch = [_item(card, _taking(0)), _item(card, _reason(), at="2026-11-21T10:20:00Z")]
    assert client.post(FEEDBACK, json={"feedback": batch}).json() == {"received": 2, "stored": 2}
    metrics = client.get("/metrics").text
    for outcome in ("accepted", "overridden"):
        assert f'cds_feedback_total{{outcome="{outcome}"}} 1.0' in metrics
