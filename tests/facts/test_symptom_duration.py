"""Symptom duration, read off the refractory card's "N weeks": from the earliest back condition or
muscle relaxant course."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import cards_for
from tests.facts.conftest import (
    LOW_BACK_PAIN,
    SCIATICA,
    condition,
    course,
    days,
    hook,
    post,
    step,
)


def refractory(client: TestClient, request: dict[str, Any]) -> str | None:
    """The refractory card's "N weeks" of symptoms; None without a card."""
    cards = cards_for(post(client, request), "refractory-spasm-imaging")
    if not cards:
        return None
    found = re.search(r"for (\d+) weeks", cards[0]["summary"])
    assert found, cards[0]["summary"]
    return found.group(1)


def relaxant_course(authored: str) -> dict[str, Any]:
    return course("relaxant", authored=authored, dosage=[step(duration=days(10))])


def test_symptoms_date_from_a_relaxant_course_earlier_than_the_back_pain(client: TestClient) -> None:
    """Back pain recorded 20 days ago, but a relaxant course began 45 days ago: 6 weeks of symptoms."""
    back_pain = condition("back", LOW_BACK_PAIN, onset="2026-11-01")
    request = hook(history=(relaxant_course("2026-10-07"),), conditions=(back_pain,))
    assert refractory(client, request) == "6"


def test_symptoms_date_from_the_earliest_condition(client: TestClient) -> None:
    """Sciatica since 50 days ago, back pain since 10: 7 weeks."""
    conditions = (
        condition("back", LOW_BACK_PAIN, onset="2026-11-11"),
        condition("sciatica", SCIATICA, onset="2026-10-02"),
    )
    assert refractory(client, hook(conditions=conditions)) == "7"


@pytest.mark.parametrize(
    ("history", "conditions"),
    [
        ((), (condition("back", LOW_BACK_PAIN, onset="2026-11-01"),)),
        ((relaxant_course("2026-08-22"),), (condition("back", LOW_BACK_PAIN, onset="2026-11-01"),)),
        (
            (relaxant_course("2026-11-01"),),
            (
                condition("back", LOW_BACK_PAIN, onset="2026-11-01"),
                condition("old", SCIATICA, onset="2026-06-01", clinical="resolved"),
                condition("past", SCIATICA, text="History of sciatica", onset="2026-06-01"),
            ),
        ),
    ],
    ids=["back-pain-20-days", "relaxant-course-91-days-ago-does-not-count", "resolved-and-past-do-not-count"],
)
def test_short_symptoms_make_no_refractory_card(
    client: TestClient, history: tuple[dict[str, Any], ...], conditions: tuple[dict[str, Any], ...]
) -> None:
    assert refractory(client, hook(history=history, conditions=conditions)) is None
