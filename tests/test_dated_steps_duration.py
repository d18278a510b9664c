"""The duration card reads a draft's dated steps as a taper's: a day two steps share (the first
ends on the day the next begins, as EHRs write a taper) is counted once, the later step's; and a
step that dates its start but no end runs on, so its dates say no last day and the next source
(its quantity) says how long, as for one open-ended instruction. Counted in both, the shared
day dispensed a day's tablets more than the taper takes; left out, an open-ended first step's
days were lost from the course and a 30-day order had no card."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture, the_update

UCUM = "http://unitsofmeasure.org"
DRAFT = "cyclobenzaprine-duration/silent-21-days.json"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def step(times: int, start: str, end: str | None = None) -> dict[str, Any]:
    period = {"start": start} if end is None else {"start": start, "end": end}
    repeat = {"frequency": times, "period": 1, "periodUnit": "d", "boundsPeriod": period}
    return {
        "timing": {"repeat": repeat},
        "doseAndRate": [{"doseQuantity": {"value": 1, "system": UCUM, "code": "{tbl}"}}],
    }


def duration_cards(client: TestClient, dosages: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    request = fixture(DRAFT)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"] = dosages
    draft["dispenseRequest"] = {"quantity": {"value": count, "unit": "tablet"}}
    return cards_for(answered(client, request), "cyclobenzaprine-duration")


def test_a_day_two_steps_share_is_counted_once_in_the_limit(client: TestClient) -> None:
    """Four a day from 12-01 to 12-15, then three a day from 12-15 to 12-31: limited to 21 days
    (to 12-21), 14 days at four and 7 at three, 77 tablets; the shared 15th in both gave 81."""
    [card] = duration_cards(client, [step(4, "2026-12-01", "2026-12-15"), step(3, "2026-12-15", "2026-12-31")], 200)
    resource = the_update(card)
    assert resource["dispenseRequest"]["quantity"]["value"] == 77
    periods = [d["timing"]["repeat"]["boundsPeriod"] for d in resource["dosageInstruction"]]
    assert periods == [{"start": "2026-12-01", "end": "2026-12-15"}, {"start": "2026-12-15", "end": "2026-12-21"}]


def test_an_open_ended_step_before_a_dated_one_is_planned_by_its_quantity(client: TestClient) -> None:
    """Three a day from 11-21 with no end, then three a day from 12-01 to 12-20: 90 tablets at
    three a day last 30 days, over the limit. The dated step's 20 days alone had been read."""
    [card] = duration_cards(client, [step(3, "2026-11-21"), step(3, "2026-12-01", "2026-12-20")], 90)
    assert "30 days planned" in card["summary"]
    assert card["indicator"] == "warning"


def test_steps_written_in_two_offsets_are_cut_at_one_instant(client: TestClient) -> None:
    """Three a day from 13:00 UTC on 12-01 to 01:00 UTC on 12-15, then one a day from 20:00 on
    12-14 in New York (01:00 UTC on the 15th): one after the other. Limited to 21 days, 14 days at
    three and 7 at one, 49 tablets, the second step ending 20:00 on 12-21 in New York; read on
    their own dates they had shared 12-14 and 12-15, 53."""
    taper = [
        step(3, "2026-12-01T13:00:00Z", "2026-12-15T01:00:00Z"),
        step(1, "2026-12-14T20:00:00-05:00", "2026-12-31"),
    ]
    [card] = duration_cards(client, taper, 200)
    resource = the_update(card)
    assert resource["dispenseRequest"]["quantity"]["value"] == 49
    second = resource["dosageInstruction"][1]["timing"]["repeat"]["boundsPeriod"]
    assert second == {"start": "2026-12-14T20:00:00-05:00", "end": "2026-12-21T20:00:00-05:00"}


def test_no_limit_is_offered_where_an_open_ended_step_runs_into_a_dated_one(client: TestClient) -> None:
    """The same draft: whether the open-ended step stops on 12-01, no date says. Cut to 21 days
    it was counted beside the second step, 96 tablets capped at 90 (the course at three a day
    takes 63) under a "21 days" label; no update is offered, and the card says why. An open
    tail after the steps runs on past them: it is still limited, cut on 12-11 (30 + 11 tablets)."""
    [card] = duration_cards(client, [step(3, "2026-11-21"), step(3, "2026-12-01", "2026-12-20")], 90)
    assert "suggestions" not in card
    assert "dated instruction with no end before another one begins" in card["detail"]
    [card] = duration_cards(client, [step(3, "2026-11-21", "2026-11-30"), step(1, "2026-12-01")], 90)
    [action] = card["suggestions"][0]["actions"]
    assert action["resource"]["dispenseRequest"]["quantity"]["value"] == 41
    ends = [dosage["timing"]["repeat"]["boundsPeriod"]["end"] for dosage in action["resource"]["dosageInstruction"]]
    assert ends == ["2026-11-30", "2026-12-11"]


def test_a_step_within_the_limit_keeps_its_period_as_written(client: TestClient) -> None:
    """Three a day from 08:00 UTC on 11-21 to 04:00 UTC on 12-01, then one a day to 12-16, both
    written at a time of day (the first ending at the very instant the second begins): only the
    second is cut, to 12-11. The first, within the limit, had been sent back ending 08:00 on
    12-02, a day at three a day running into the second step's days."""
    taper = [
        step(3, "2026-11-21T08:00:00Z", "2026-12-01T04:00:00Z"),
        step(1, "2026-12-01T04:00:00Z", "2026-12-16T04:00:00Z"),
    ]
    [card] = duration_cards(client, taper, 60)
    resource = the_update(card)
    periods = [d["timing"]["repeat"]["boundsPeriod"] for d in resource["dosageInstruction"]]
    assert periods == [
        {"start": "2026-11-21T08:00:00Z", "end": "2026-12-01T04:00:00Z"},
        {"start": "2026-12-01T04:00:00Z", "end": "2026-12-12T04:00:00Z"},
    ]
    assert resource["dispenseRequest"]["quantity"]["value"] == 41


def test_a_step_in_another_offset_within_the_limit_keeps_its_period_as_written(client: TestClient) -> None:
    """Three a day from 08:00 to 20:00 on 11-30 in New York, then one a day from 08:00 UTC on 12-01
    to 12-15: the first, within the limit, is kept as written; it had been sent back ending 08:00
    on 12-02 in New York."""
    taper = [
        step(3, "2026-11-21T08:00:00-05:00", "2026-11-30T20:00:00-05:00"),
        step(1, "2026-12-01T08:00:00Z", "2026-12-15T20:00:00Z"),
    ]
    [card] = duration_cards(client, taper, 60)
    first = the_update(card)["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]
    assert first == {"start": "2026-11-21T08:00:00-05:00", "end": "2026-11-30T20:00:00-05:00"}


@pytest.mark.parametrize("sequence", [None, 1])
def test_a_single_dated_step_keeps_its_start_in_the_limit(client: TestClient, sequence: int | None) -> None:
    """One step dated to begin after the order is written (2026-12-15, the fixtures' day
    2026-11-21), as Epic writes it with ``sequence`` 1: limited to 21 days from its own start, its
    start kept. Read by its length, the update put ``boundsDuration`` in its period's place."""
    dosage = step(3, "2026-12-15", "2027-01-14")
    if sequence is not None:
        dosage["sequence"] = sequence
    [card] = duration_cards(client, [dosage], 90)
    [kept] = the_update(card)["dosageInstruction"]
    assert kept["timing"]["repeat"]["boundsPeriod"] == {"start": "2026-12-15", "end": "2027-01-04"}
    assert "boundsDuration" not in kept["timing"]["repeat"]
