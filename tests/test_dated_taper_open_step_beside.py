"""A dated taper's step with no end that the later steps' end does not bound (clinical
specification §1, "Planned duration"; tests/test_dated_taper_open_step.py for the cases before).

A step with no end that begins by the first dated step's last day runs beside the taper (a
bedtime dose from day 1): it runs on, so the bounds say no last day, and the quantity or supply
says how long (counted by the dates, never shorter than §1's count at the taper's most a day),
else the course is unknown and at least the dates' days. One between dated steps ends by the
later one's end, unless a quantity or supply says longer: the longer reading counts. Read as
ending with the taper, these courses of 30 to 100 days had no card (the reviewer's t09, t09b,
t11 and t19). No one-click update: whether the open step stops when another begins, no date
says (``facts.orders.RUNS_ON_REASON``)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.test_dated_taper_open_step import duration_cards, supply, tablets

RUNS_ON = "dated instruction with no end before another one begins"
# A bedtime tablet from 11-21 with no end, beside two a day 11-21..11-25, then one a day to 11-30.
BESIDE = [("2026-11-21", None, 1), ("2026-11-21", "2026-11-25", 2), ("2026-11-26", "2026-11-30", 1)]
# Three a day 11-21..11-25, three a day from 11-26 with no end, one a day 12-01..12-03.
MIDDLE = [("2026-11-21", "2026-11-25", 3), ("2026-11-26", None, 3), ("2026-12-01", "2026-12-03", 1)]
# Three a day 11-21..11-23, two a day from 11-24 with no end, one a day 11-28..12-02.
MIDDLE_SHORT = [("2026-11-21", "2026-11-23", 3), ("2026-11-24", None, 2), ("2026-11-28", "2026-12-02", 1)]


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def warned(client: TestClient, steps: list[tuple[str, str | None, int]], dispense: dict[str, Any] | None) -> str:
    """The one duration card's summary, a warning with no update, and where its days come from."""
    [card] = duration_cards(client, steps, dispense)
    assert card["indicator"] == "warning"
    assert "suggestions" not in card
    assert RUNS_ON in card["detail"]
    basis = re.search(r"\*\* of cyclobenzaprine \(([^)]*)\)", card["detail"])
    return f"{card['summary']} | {basis.group(1) if basis else None}"


def test_a_dose_beside_the_taper_from_day_one_runs_on_by_the_count(client: TestClient) -> None:
    """90 tablets: three a day for 5 days (the bedtime one and two), two a day for 5, then the
    bedtime one alone: 25 in the first 10 days, 65 after, 75 days (§1's count at the taper's most,
    two a day, is 45: the longer). Read as ending with the taper on 11-30: 10 days, no card."""
    said = warned(client, BESIDE, tablets(90))
    assert said == (
        "Limit cyclobenzaprine to 2–3 weeks: 75 days planned | 90 tablets: 25 in the first 10 days, then 1 a day"
    )


def test_a_dose_beside_the_taper_from_day_one_runs_on_by_the_supply(client: TestClient) -> None:
    """A 30-day supply: 30 days (read as ending with the taper: 10 days, no card)."""
    said = warned(client, BESIDE, supply(30))
    assert said == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned | a 30-day supply"


def test_a_dose_beside_the_taper_with_nothing_dispensed_is_of_unknown_length(client: TestClient) -> None:
    """Nothing saying how long the bedtime dose runs: unknown, a duration is asked for (read as
    ending with the taper: 10 days, no card). Its dates over the limit (a taper to 12-15, 25
    days): at least 25 days, warned (not a plain "25 days" shorter than the course)."""
    [card] = duration_cards(client, BESIDE, None)
    assert card["indicator"] == "info"
    assert card["summary"] == "Specify a cyclobenzaprine duration of at most 21 days"
    longer = [*BESIDE[:2], ("2026-11-26", "2026-12-15", 1)]
    said = warned(client, longer, None)
    assert said.startswith("Limit cyclobenzaprine to 2–3 weeks: at least 25 days planned | ")
    assert "a taper from 2026-11-21 to 2026-12-15, and a step from 2026-11-21 with no end" in said


def test_a_count_past_a_middle_open_step_s_dates_says_longer(client: TestClient) -> None:
    """The open step between dated steps: the dates say 13 days (11-21..12-03), 300 tablets at three
    a day 100: the longer, 100 days (read from the dates alone: no card)."""
    said = warned(client, MIDDLE, tablets(300))
    assert said == "Limit cyclobenzaprine to 2–3 weeks: 100 days planned | 300 tablets at 3 a day"


def test_a_count_or_supply_past_a_short_middle_open_step_s_dates_says_longer(client: TestClient) -> None:
    """Dates of 12 days (11-21..12-02): 90 tablets at three a day are 30 days, as a 30-day supply
    is (read from the dates alone: no card). 20 tablets (6.67 days) are short of the dates,
    which say 12 days: no card."""
    said = warned(client, MIDDLE_SHORT, tablets(90))
    assert said == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned | 90 tablets at 3 a day"
    said = warned(client, MIDDLE_SHORT, supply(30))
    assert said == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned | a 30-day supply"
    assert duration_cards(client, MIDDLE_SHORT, tablets(20)) == []
