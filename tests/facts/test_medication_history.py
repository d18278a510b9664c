"""Medication history: courses, their first and last days, read off the duration card's "N taken +
M planned" and the MAOI card's washout."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import cards_for
from tests.facts.conftest import (
    PHENELZINE_15,
    course,
    days,
    duration_card,
    hook,
    planned,
    post,
    step,
)


@pytest.mark.parametrize(
    ("order_days", "expected"),
    [(11, None), (12, "10 taken + 12 planned")],
)
def test_history_course_ends_on_its_bounds_period_end(
    client: TestClient, order_days: int, expected: str | None
) -> None:
    """A course 2026-11-11..2026-11-20 was taken on 10 days: 10 + 11 is the 21-day limit."""
    prior = course("prior", authored="2026-11-11", dosage=[step(bounds=("2026-11-11", "2026-11-20"))])
    request = hook(dosage=[step(duration=days(order_days))], dispense={}, history=(prior,))
    assert planned(client, request) == expected


@pytest.mark.parametrize(
    "prior",
    [
        course("by-duration", authored="2026-11-11", dosage=[step(duration=days(10))]),
        course("by-supply", authored="2026-11-11", dispense={"expectedSupplyDuration": days(10)}),
        course("by-validity", dispense={"validityPeriod": {"start": "2026-11-11"}, "expectedSupplyDuration": days(10)}),
        course("by-bounds-start", dosage=[step(bounds=("2026-11-11", "2026-11-20"))]),
        course(
            "by-open-bounds-start",
            dosage=[step(bounds=("2026-11-11", None))],
            dispense={"expectedSupplyDuration": days(10)},
        ),
        course("recorded-later", authored="2026-11-20", dosage=[step(bounds=("2026-11-06", "2026-11-15"))]),
        course("stopped", status="stopped", authored="2026-11-11", dosage=[step(duration=days(10))]),
        course("on-hold", status="on-hold", authored="2026-11-11", dosage=[step(duration=days(10))]),
    ],
    ids=lambda prior: prior["id"],
)
def test_course_of_ten_days(client: TestClient, prior: dict[str, Any]) -> None:
    """Start + 10 days covers the start and the 9 days after, however the course states it (a
    course authored after it began runs on the dates it records)."""
    request = hook(dosage=[step(duration=days(12))], dispense={}, history=(prior,))
    assert planned(client, request) == "10 taken + 12 planned"


def test_orders_that_dose_alike_run_from_their_own_dates(client: TestClient) -> None:
    """A course's plan is read once for every order that doses and dispenses alike; its dates
    stay each order's own: the day it was written, its validity period, a bounds period that
    ends without a start (which starts on the written day). One client, so each call after the
    first meets plans already read. Today is 2026-11-21: a 10-day supply from the 14th has run
    8 days; a period ending on the 20th, 7."""
    supply = {"expectedSupplyDuration": days(10)}
    ends_on_20th = [{"timing": {"repeat": {"boundsPeriod": {"end": "2026-11-20"}}}}]
    for first_day, taken, taken_to_20th in (("2026-11-11", 10, 10), ("2026-11-14", 8, 7)):
        priors = (
            (course("written", authored=first_day, dispense=supply), taken),
            (course("valid-from", dispense={"validityPeriod": {"start": first_day}, **supply}), taken),
            (course("ends-only", authored=first_day, dosage=ends_on_20th), taken_to_20th),
        )
        for prior, expected in priors:
            request = hook(dosage=[step(duration=days(15))], dispense={}, history=(prior,))
            assert planned(client, request) == f"{expected} taken + 15 planned", (prior["id"], first_day)


@pytest.mark.parametrize("kind", ["MedicationStatement", "MedicationDispense", "MedicationAdministration"])
def test_only_orders_are_courses(client: TestClient, kind: str) -> None:
    """A statement, dispense or administration naming the drug in the medications key is no order
    (its drug is read first, its type after: the type must still count)."""
    order = course("prior", authored="2026-11-11", dosage=[step(duration=days(10))])
    assert (
        planned(client, hook(dosage=[step(duration=days(12))], dispense={}, history=(order,)))
        == "10 taken + 12 planned"
    )
    other = {**order, "resourceType": kind}
    assert planned(client, hook(dosage=[step(duration=days(12))], dispense={}, history=(other,))) is None


@pytest.mark.parametrize("status", ["cancelled", "draft", "entered-in-error"])
def test_courses_not_taken_do_not_count(client: TestClient, status: str) -> None:
    prior = course("prior", status=status, authored="2026-11-11", dosage=[step(duration=days(10))])
    request = hook(dosage=[step(duration=days(12))], dispense={}, history=(prior,))
    assert planned(client, request) is None


def test_unknown_duration_is_assumed_14_days(client: TestClient) -> None:
    """And the card says the 14 days are an assumption (§1: "marked as an assumption")."""
    prior = course("prior", authored="2026-11-01")
    request = hook(dosage=[step(duration=days(8))], dispense={}, history=(prior,))
    assert planned(client, request) == "14 taken + 8 planned"
    card = duration_card(client, request)
    assert card is not None
    assert "(course from 2026-11-01, length not recorded: 14 days assumed)" in card["detail"]


def test_active_order_of_unknown_duration_runs_until_today(client: TestClient) -> None:
    """Active since 2026-11-01: 21 days up to today, not the 14 assumed for a finished course."""
    prior = course("prior", status="active", authored="2026-11-01")
    request = hook(dosage=[step(duration=days(8))], dispense={}, history=(prior,))
    assert planned(client, request) == "21 taken + 8 planned"


@pytest.mark.parametrize(
    ("last_day", "fires"),
    [("2026-11-08", True), ("2026-11-07", False)],
    ids=["ended-13-days-ago", "ended-14-days-ago"],
)
def test_mao_inhibitor_ended_days_ago_counts_from_its_last_day(client: TestClient, last_day: str, fires: bool) -> None:
    """A boundsPeriod ending 2026-11-08 ended 13 days before 2026-11-21: inside the 14-day washout."""
    maoi = course(
        "maoi", PHENELZINE_15, status="stopped", authored="2026-09-01", dosage=[step(bounds=("2026-09-01", last_day))]
    )
    cards = cards_for(post(client, hook(history=(maoi,))), "cyclobenzaprine-maoi")
    assert [card["indicator"] for card in cards] == (["critical"] if fires else [])


@pytest.mark.parametrize("last_day", ["2026-11", "2026"])
def test_a_mao_inhibitor_course_ending_in_this_month_or_year_is_taken_now(client: TestClient, last_day: str) -> None:
    """An end of "2026-11" covers 2026-11-30 (§1): the course runs today, critical; read as
    2026-11-01 it had ended 20 days ago, past the washout, and no card came."""
    maoi = course("maoi", PHENELZINE_15, status="active", dosage=[step(bounds=("2026-09-01", last_day))])
    cards = cards_for(post(client, hook(history=(maoi,))), "cyclobenzaprine-maoi")
    assert [card["indicator"] for card in cards] == ["critical"]


@pytest.mark.parametrize(
    ("last_moment", "fires"),
    [
        ("2026-11-08T01:00:00+02:00", True),
        ("2026-11-08T09:00:00+10:00", True),
        ("2026-11-07T23:30:00-05:00", True),
        # 14 days back by either date, but 13 days 12 hours and more by the clock (``test_maoi_hours``)
        ("2026-11-07T23:30:00Z", True),
        ("2026-11-07T18:00:00-05:00", True),
        ("2026-11-07T11:00:00Z", False),  # 14 days and an hour
        ("2026-11-07T05:00:00-05:00", False),  # 14 days and two hours
    ],
    ids=[
        "athens-small-hours",
        "sydney-morning",
        "new-york-evening",
        "utc-the-day-before",
        "new-york-afternoon",
        "utc-over-14-days",
        "new-york-over-14-days",
    ],
)
def test_a_mao_inhibitor_last_taken_in_another_time_zone_counts_from_the_later_day(
    client: TestClient, last_moment: str, fires: bool
) -> None:
    """The washout counts from the later of the end's own date and its UTC day (today is a UTC
    day): 01:00 in Athens on the 8th is 23:00 UTC on the 7th, 23:30 in New York on the 7th is
    04:30 UTC on the 8th; either way the last dose was under 14 days before some of 2026-11-21.
    Read as the local date the New York end was 14 days back; read as the UTC day the Athens one.
    An end given as a time is also counted by the clock (noon): 14 days and an hour is past it."""
    dosage = [step(bounds=("2026-09-01", last_moment))]
    maoi = course("maoi", PHENELZINE_15, status="stopped", authored="2026-09-01", dosage=dosage)
    cards = cards_for(post(client, hook(history=(maoi,))), "cyclobenzaprine-maoi")
    assert [card["indicator"] for card in cards] == (["critical"] if fires else [])


@pytest.mark.parametrize("status", ["Active", "ACTIVE"])
def test_a_status_code_in_capitals_is_read_as_the_code(client: TestClient, status: str) -> None:
    """FHIR codes are lower case; read as written, "Active" was no status of a course, and an
    active phenelzine and its critical card were dropped."""
    maoi = course("maoi", PHENELZINE_15, status=status, authored="2026-11-01")
    cards = cards_for(post(client, hook(history=(maoi,))), "cyclobenzaprine-maoi")
    assert [card["indicator"] for card in cards] == ["critical"]


def test_a_draft_of_another_kind_sharing_the_id_of_a_history_order_leaves_it_in(client: TestClient) -> None:
    """Only the orders under review are left out of the history (§1): a server that numbers each
    resource type on its own gives a ServiceRequest draft the id of a MedicationRequest on record,
    and the phenelzine course it named was dropped, the critical card with it."""
    maoi = course("1", PHENELZINE_15, status="active", authored="2026-11-01")
    request = hook(history=(maoi,))
    therapy = {
        "resourceType": "ServiceRequest",
        "id": "1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/harness-pt-1"},
        "code": {"text": "Physical therapy"},
    }
    request["context"]["draftOrders"]["entry"].append({"resource": therapy})
    cards = cards_for(post(client, request), "cyclobenzaprine-maoi")
    assert [card["indicator"] for card in cards] == ["critical"]
