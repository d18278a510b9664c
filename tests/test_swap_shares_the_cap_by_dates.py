"""The 5 mg swap caps instructions dated the same or overlapping days as taken together: they
share its three tablets a day, as instructions sharing a ``sequence`` do, and as the duration
update and the swap's recount already read them. Read as a taper's steps, each kept three a day:
two instructions three times a day over the same ten days became six 5 mg tablets a day, 60,
under "1 tablet three times a day"; morning and evening once a day was labelled "once a day"."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture

UCUM = "http://unitsofmeasure.org"
HEPATIC = (
    "cyclobenzaprine-hepatic-impairment",
    "cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-10mg.json",
)
OLDER = ("cyclobenzaprine-older-adult", "cyclobenzaprine-older-adult/fires-swap-taper-counted-step-by-step.json")


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def dated(times: int, start: str, end: str, when: str | None = None) -> dict[str, Any]:
    repeat: dict[str, Any] = {"frequency": times, "period": 1, "periodUnit": "d"}
    repeat["boundsPeriod"] = {"start": start, "end": end}
    if when is not None:
        repeat["when"] = [when]
    dose = {"value": 1, "system": UCUM, "code": "{tbl}"}
    return {"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": dose}]}


def swap(client: TestClient, card: tuple[str, str], dosages: list[dict[str, Any]], count: int) -> tuple[str, Any]:
    """The start-dose card's dose change of a 10 mg draft of ``dosages``: its label and resource."""
    rule, name = card
    request = fixture(name)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"] = dosages
    draft["dispenseRequest"] = {"quantity": {"value": count, "unit": "tablet"}}
    [suggestion] = [
        s for c in cards_for(answered(client, request), rule) for s in c["suggestions"] if "5 mg" in s["label"]
    ]
    [action] = suggestion["actions"]
    return suggestion["label"], action["resource"]


def most_a_day(resource: dict[str, Any]) -> tuple[int, int]:
    """(the most 5 mg tablets a day the update's instructions take on any day, all they take)."""
    taken: dict[date, int] = {}
    for dosage in resource["dosageInstruction"]:
        repeat = dosage["timing"]["repeat"]
        assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1
        first, last = (date.fromisoformat(repeat["boundsPeriod"][end]) for end in ("start", "end"))
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            taken[day] = taken.get(day, 0) + repeat["frequency"]
    return max(taken.values()), sum(taken.values())


SAME_DAYS = [dated(3, "2026-12-10", "2026-12-19"), dated(3, "2026-12-10", "2026-12-19")]


@pytest.mark.parametrize(
    ("card", "dosages", "label", "daily", "count"),
    [
        (HEPATIC, SAME_DAYS, "1 tablet three times a day", 3, 30),
        (OLDER, SAME_DAYS, "1 tablet three times a day", 3, 30),
        # Morning and evening: twice a day, both kept (the label had said once a day).
        (
            HEPATIC,
            [dated(1, "2026-12-10", "2026-12-19", "MORN"), dated(1, "2026-12-10", "2026-12-19", "EVE")],
            "1 tablet twice a day",
            2,
            20,
        ),
        # Twice and twice on the same days: three a day, the second instruction's share one.
        (HEPATIC, [dated(2, "2026-12-10", "2026-12-19"), dated(2, "2026-12-10", "2026-12-19")], "three times", 3, 30),
    ],
    ids=["hepatic-same-days", "older-adult-same-days", "morning-evening", "two-and-two"],
)
def test_instructions_on_the_same_days_share_three_a_day(
    client: TestClient, card: tuple[str, str], dosages: list[dict[str, Any]], label: str, daily: int, count: int
) -> None:
    said, resource = swap(client, card, dosages, 60)
    assert label in said
    assert most_a_day(resource) == (daily, count)  # what the label says, on every day it runs
    assert resource["dispenseRequest"]["quantity"]["value"] == count


def test_dated_steps_one_after_another_each_keep_three_a_day(client: TestClient) -> None:
    """Steps on days of their own are a taper: each keeps its own three a day, none is dropped."""
    taper = [dated(3, "2026-12-10", "2026-12-14"), dated(3, "2026-12-15", "2026-12-19")]
    said, resource = swap(client, HEPATIC, taper, 30)
    assert "three times a day" in said
    assert most_a_day(resource) == (3, 30)
    assert resource["dispenseRequest"]["quantity"]["value"] == 30


def test_a_taper_step_that_begins_the_day_another_ends_keeps_its_days(client: TestClient) -> None:
    """EHRs end a taper's step on the next one's first day: read as taken together, the shared
    cap of three dropped the once-a-day step whole, the taper's tail (the review of the change)."""
    taper = [dated(3, "2026-12-10", "2026-12-14"), dated(1, "2026-12-14", "2026-12-20")]
    said, resource = swap(client, HEPATIC, taper, 40)
    assert "three times a day" in said
    assert [d["timing"]["repeat"]["frequency"] for d in resource["dosageInstruction"]] == [3, 1]


def test_steps_touching_at_one_instant_written_in_two_offsets_are_a_taper(client: TestClient) -> None:
    """The first step ends at 01:00 UTC on the 10th, the next begins at 20:00 on the 9th in New
    York: the same instant. Read on their own dates (the 10th, the 9th) they overlapped by a day,
    and no dose change was offered; in one offset they touch: 5 days at three, 5 at one."""
    taper = [
        dated(3, "2026-12-05T13:00:00Z", "2026-12-10T01:00:00Z"),
        dated(1, "2026-12-09T20:00:00-05:00", "2026-12-14T20:00:00-05:00"),
    ]
    said, resource = swap(client, HEPATIC, taper, 30)
    assert "three times a day" in said
    assert [d["timing"]["repeat"]["frequency"] for d in resource["dosageInstruction"]] == [3, 1]
    assert resource["dispenseRequest"]["quantity"]["value"] == 20


def open_ended(times: int, start: str) -> dict[str, Any]:
    dosage = dated(times, start, start)
    del dosage["timing"]["repeat"]["boundsPeriod"]["end"]
    return dosage


PARTLY = "overlap on some days only, so no one-click dose change is offered"


@pytest.mark.parametrize(
    "dosages",
    [
        [dated(3, "2026-12-10", "2026-12-19"), dated(3, "2026-12-15", "2026-12-19")],  # the second within the first
        [dated(3, "2026-12-07", "2026-12-15"), dated(1, "2026-12-14", "2026-12-27")],  # two days shared
        [dated(1, "2026-12-07", "2026-12-27"), dated(2, "2026-12-10", "2026-12-12")],  # a few days' extra
        [open_ended(3, "2026-12-07"), open_ended(3, "2026-12-08")],  # neither ends
        [open_ended(3, "2026-12-10"), dated(1, "2026-12-15", "2026-12-20")],  # the first runs on
        # A sequence beside the dates: one sequence over two spans, or two over overlapping days.
        [
            {**dated(3, "2026-12-10", "2026-12-20"), "sequence": 1},
            {**dated(1, "2026-12-15", "2026-12-25"), "sequence": 1},
        ],
        [
            {**dated(3, "2026-12-10", "2026-12-20"), "sequence": 1},
            {**dated(3, "2026-12-15", "2026-12-25"), "sequence": 2},
        ],
    ],
    ids=["within", "two-days-shared", "extra-days", "neither-ends", "first-runs-on", "one-sequence", "two-sequences"],
)
def test_steps_together_on_some_days_only_are_offered_no_dose_change(
    client: TestClient, dosages: list[dict[str, Any]]
) -> None:
    """No one sig of the 5 mg tablet says them: sharing the cap over all their days dropped a
    step whole (a taper's tail, or nine days of a three-week course), one cap each wrote six
    tablets a day under "three times a day", and the label took the group's peak (the review of
    the change). The card stays, its removal offered, and says why."""
    request = fixture(HEPATIC[1])
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"] = dosages
    draft["dispenseRequest"] = {"quantity": {"value": 60, "unit": "tablet"}}
    [card] = cards_for(answered(client, request), HEPATIC[0])
    assert not [s for s in card.get("suggestions", []) if "5 mg" in s["label"]]
    assert PARTLY in card["detail"]


def test_a_sequence_that_agrees_with_the_dates_keeps_its_dose_change(client: TestClient) -> None:
    """A taper numbered as its dates run: each step its own three a day, none dropped."""
    taper = [
        {**dated(3, "2026-12-10", "2026-12-14"), "sequence": 1},
        {**dated(1, "2026-12-15", "2026-12-20"), "sequence": 2},
    ]
    _, resource = swap(client, HEPATIC, taper, 40)
    assert [d["timing"]["repeat"]["frequency"] for d in resource["dosageInstruction"]] == [3, 1]
