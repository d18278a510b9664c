"""Day counts on cards: exact for a short span, rounded to months or years for a long one (a
pharmacist read "started 2019-01-05, 2793 days ago" on a site's widened refractory window), and
exact where the card weighs the count against a threshold of days (an MI's first 90 days)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, ago, cards_for, fixture

REFRACTORY = "refractory-spasm-imaging"
MI = "cyclobenzaprine-contraindicated-condition"


def prior_course(days: int) -> dict[str, Any]:
    """The refractory card's request whose prior cyclobenzaprine course (its only back history)
    started ``days`` ago."""
    request = fixture(f"{REFRACTORY}/fires-info-prior-course-60-days-ago.json")
    request["prefetch"]["medications"]["entry"][0]["resource"]["authoredOn"] = ago(days)
    return request


def back_pain_since(days: int) -> dict[str, Any]:
    """``prior_course``, with low back pain since that day: a course alone over 90 days old
    does not date the symptoms."""
    request = prior_course(days)
    conditions = fixture(f"{REFRACTORY}/fires-info-back-pain-51-days.json")["prefetch"]["conditions"]
    conditions["entry"][0]["resource"]["onsetDateTime"] = ago(days)
    request["prefetch"]["conditions"] = conditions
    return request


def detail(client: TestClient, request: dict[str, Any], rule: str) -> str:
    [card] = cards_for(client.post(SELECT, json=request).json(), rule)
    return str(card["detail"])


def test_back_pain_of_years_reads_in_years(module_client: TestClient) -> None:
    """The course begun as long ago is no trigger: the prior-course window is 90 days at most
    (tests/test_thresholds_read_as_one.py), where a site's 3,650 had listed it."""
    text = detail(module_client, back_pain_since(2793), REFRACTORY)
    assert "course started" not in text
    assert "Back symptoms for **about 8 years**" in text
    assert f"(M54.50) since {ago(2793)}, about 8 years." in text
    assert "2793" not in text


@pytest.mark.parametrize(
    ("days", "said"),
    [(60, "60 days"), (61, "about 2 months"), (84, "about 3 months")],
)
def test_two_months_is_where_days_give_way_to_months(module_client: TestClient, days: int, said: str) -> None:
    text = detail(module_client, prior_course(days), REFRACTORY)
    assert f"course started {ago(days)}, {said} ago." in text
    assert f"Back symptoms for **{said}**" in text


def test_a_listed_course_that_ended_over_a_year_ago_reads_in_months(module_client: TestClient) -> None:
    request = fixture("cyclobenzaprine-maoi/fires-maoi-active-planned-end-passed-over-365-days-ago-still-asks.json")
    text = detail(module_client, request, "cyclobenzaprine-maoi")
    assert "planned course ended 2025-10-30, about 13 months ago)" in text


def test_an_mi_is_counted_in_days_near_its_window_and_in_months_beyond(module_client: TestClient) -> None:
    """ "82–112 days ago; the first 90 days count": rounded to "about 3–4 months" it would no longer
    say which side of 90 days the MI may fall; a year alone (0–324 days) reads in months."""
    month = detail(module_client, fixture(f"{MI}/fires-acute-mi-onset-month-only-may-be-recent.json"), MI)
    assert "(82–112 days ago; the first 90 days count" in month
    year = detail(module_client, fixture(f"{MI}/fires-acute-mi-onset-year-only-asks-its-date.json"), MI)
    assert "since 2026 (up to about 11 months ago; the first 90 days count" in year
