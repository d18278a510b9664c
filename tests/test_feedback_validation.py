"""Feedback a client's bug makes is a 400 naming the field (CDS Hooks §Feedback), stored not at
all: an empty id, an acceptance of no suggestion, or a batch past the 1,000 items one
transaction takes must not reach the figures as if a clinician had done something."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.settings import Settings
from tests.conftest import SELECT
from tests.feedback_calls import database_rows

FEEDBACK = f"{SELECT}/feedback"


def _accepted(**changes: Any) -> dict[str, Any]:
    """An acceptance as the sandbox sends it (of a card this service has no record of: stored as sent)."""
    item = {
        "card": "f0e1d2c3-0000-4000-8000-000000000000",
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "a1b2c3d4-0000-4000-8000-000000000000"}],
        "outcomeTimestamp": "2026-11-21T10:15:00.000Z",
    }
    return item | changes


def _stored(settings: Settings) -> int:
    [(count,)] = database_rows(f"sqlite:///{settings.data_dir / 'cds-service.db'}", "SELECT count(*) FROM feedback")
    return int(count)


@pytest.mark.parametrize(
    ("item", "field"),
    [
        pytest.param(_accepted(acceptedSuggestions=[]), "feedback.0", id="accepted-none"),
        pytest.param(_accepted(acceptedSuggestions=[{"id": ""}]), "feedback.0.acceptedSuggestions.0.id", id="empty-id"),
        pytest.param(_accepted(card=""), "feedback.0.card", id="empty-card"),
        pytest.param(
            _accepted(overrideReason={"reason": {"system": "urn:site:reasons", "code": ""}}),
            "feedback.0.overrideReason.reason.code",
            id="empty-reason-code",
        ),
        pytest.param(_accepted(outcomeTimestamp="3000-01-01T00:00:00Z"), "feedback.0.outcomeTimestamp", id="year-3000"),
        # A date alone was stored as midnight UTC: a time no clinician acted at.
        pytest.param(_accepted(outcomeTimestamp="2026-11-21"), "feedback.0.outcomeTimestamp", id="date-alone"),
    ],
)
def test_an_item_saying_nothing_usable_is_400_naming_the_field(
    client: TestClient, settings: Settings, item: dict[str, Any], field: str
) -> None:
    """An acceptance must name the suggestion taken, and a card and a reason their code: an
    empty one counted an alert accepted, or a reason given, that no clinician chose."""
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == [field]
    assert _stored(settings) == 0


@pytest.mark.parametrize("stamp", ["2026-12-07T24:00:00Z", "2026-13-01T10:15:00Z", "2026-12-07T10:15:00+25:00"])
def test_a_timestamp_no_calendar_has_is_400_in_our_words(client: TestClient, settings: Settings, stamp: str) -> None:
    """ISO 8601's "24:00" (no time FHIR or RFC 3339 allows), a 13th month: refused in the
    parser's own words ("unexpected extra characters at the end of the input"), where the
    other timestamp errors say what is expected (an adversarial review)."""
    response = client.post(FEEDBACK, json={"feedback": [_accepted(outcomeTimestamp=stamp)]})
    assert response.status_code == 400, response.text
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["feedback.0.outcomeTimestamp"]
    expected = "feedback.0.outcomeTimestamp: is not a valid date and time (e.g. 2026-12-07T10:15:00Z)"
    assert issue["diagnostics"] == expected
    assert _stored(settings) == 0


def test_a_batch_of_more_than_1000_items_is_400_and_1000_are_taken(
    make_client: Callable[..., TestClient], settings: Settings
) -> None:
    """The batch is written in one transaction, bounded at 1,000 items (the same item over
    and over is stored once: a batch past the bound would be taken whatever it holds)."""
    client = make_client()
    response = client.post(FEEDBACK, json={"feedback": [_accepted()] * 1001})
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["feedback"]
    assert _stored(settings) == 0
    assert client.post(FEEDBACK, json={"feedback": [_accepted()] * 1000}).json() == {"received": 1000, "stored": 1}


# The tests' clock reads 2026-11-21T12:00:00Z: five minutes after it is the last moment taken.
@pytest.mark.parametrize("stamp", ["1970-01-01T00:00:00Z", "2026-11-21T12:05:00Z"])
def test_the_first_and_last_moments_the_published_schema_allows_are_taken(
    client: TestClient, settings: Settings, stamp: str
) -> None:
    """The OpenAPI document states outcomeTimestamp's range as from 1970 (in UTC) to no more than
    5 minutes after the service's clock: a client validating against it must not be refused at
    either end."""
    response = client.post(FEEDBACK, json={"feedback": [_accepted(outcomeTimestamp=stamp)]})
    assert response.json() == {"received": 1, "stored": 1}, response.text
    assert _stored(settings) == 1


def test_an_acceptance_of_more_suggestions_than_a_card_offers_is_400(client: TestClient, settings: Settings) -> None:
    """A card offers a few (ours at most three): 90,000 took 0.8 s to read, on the event loop."""
    many = [{"id": f"a1b2c3d4-0000-4000-8000-{n:012d}"} for n in range(21)]
    response = client.post(FEEDBACK, json={"feedback": [_accepted(acceptedSuggestions=many)]})
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["feedback.0.acceptedSuggestions"]
    assert _stored(settings) == 0


def test_a_batch_of_many_bad_items_names_the_first_twenty(client: TestClient, settings: Settings) -> None:
    """1,000 bad items named 53,000 fields in a 4 MB answer: the first twenty, and how many more."""
    bad = [_accepted(card="", outcomeTimestamp="2026-11-21") for _ in range(1000)]
    response = client.post(FEEDBACK, json={"feedback": bad})
    assert response.status_code == 400, response.text
    [issue] = response.json()["issue"]
    assert issue["expression"][:2] == ["feedback.0.card", "feedback.0.outcomeTimestamp"]
    assert len(issue["expression"]) == 20
    assert issue["diagnostics"].endswith("; and 1980 more")
    assert _stored(settings) == 0
