"""Symptom duration, read off the refractory card's "N weeks": from the earliest back condition or
muscle relaxant course."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ago, cards_for
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

CPT = "http://www.ama-assn.org/go/cpt"


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


@pytest.mark.parametrize(("begun", "weeks"), [(90, "12"), (91, "7")])
def test_a_relaxant_course_dates_the_symptoms_if_begun_in_the_last_90_days(
    client: TestClient, begun: int, weeks: str
) -> None:
    """Back pain for 50 days (7 weeks) and a relaxant course begun 90 days ago: 12 weeks, the day
    90 days ago among the 90 (§1); begun 91 days ago, the course does not date them."""
    back_pain = condition("back", LOW_BACK_PAIN, onset=ago(50))
    request = hook(history=(relaxant_course(ago(begun)),), conditions=(back_pain,))
    assert refractory(client, request) == weeks


@pytest.mark.parametrize("end", [None, 10])
def test_an_onset_period_dates_the_symptoms_from_its_start(client: TestClient, end: int | None) -> None:
    """Sciatica with an onset period from 60 days ago (to 10 days ago, or open): 8 weeks, from the
    start (§1: ``onsetPeriod.start``), not from its end."""
    sciatica = condition("sciatica", SCIATICA)
    sciatica["onsetPeriod"] = {"start": ago(60), **({"end": ago(end)} if end else {})}
    assert refractory(client, hook(conditions=(sciatica,))) == "8"


def test_a_lumbar_mri_drafted_beside_the_relaxant_is_imaging_on_record(client: TestClient) -> None:
    """Sciatica for 60 days asks for a work-up; with an MRI of the lumbar spine drafted in the same
    session (a draft ServiceRequest), the imaging is under way and the card is not shown."""
    request = hook(conditions=(condition("sciatica", SCIATICA, onset=ago(60)),))
    assert refractory(client, request) == "8"
    mri = {
        "resourceType": "ServiceRequest",
        "id": "mri-draft",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/harness-pt-1"},
        "code": {"coding": [{"system": CPT, "code": "72148", "display": "MRI lumbar spine without contrast"}]},
    }
    request["context"]["draftOrders"]["entry"].append({"resource": mri})
    assert refractory(client, request) is None


@pytest.mark.parametrize(
    ("onset", "said"), [(182, "for 26 weeks:"), (183, "for about 6 months:"), (2896, "for about 8 years:")]
)
def test_long_symptoms_are_said_in_months_or_years(client: TestClient, onset: int, said: str) -> None:
    """Back pain since 2019 read "for 413 weeks": from half a year, the summary says months or
    years, as the detail does."""
    back_pain = condition("back", LOW_BACK_PAIN, onset=ago(onset))
    cards = cards_for(post(client, hook(conditions=(back_pain,))), "refractory-spasm-imaging")
    assert said in cards[0]["summary"], cards[0]["summary"]
