"""An MAO inhibitor's washout counted by the clock where the record gives its end as a time:
linezolid to 21:00 yesterday is 15 hours ago at noon, inside its 24 hours, where §1's days read
"ended 1 day ago" and the critical card was silent (a pharmacist's review). A date alone is still
read as §1 counts it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.conftest import NOON, SELECT, Clock, fixture, rule_ids

MAOI = "cyclobenzaprine-maoi"
# Linezolid's dosing period ends 2026-11-21, the fixtures' day (the tests' clock: noon UTC of it,
# conftest's NOON); phenelzine's 2026-11-08.
LINEZOLID = "cyclobenzaprine-maoi/fires-linezolid-last-day-today-v2-24-hour-washout.json"
PHENELZINE = "cyclobenzaprine-maoi/fires-maoi-last-day-13-days-ago-v2-inclusive-end.json"


def _cards(client: TestClient, course: str, end: str) -> dict[str, object]:
    request = fixture(course)
    [prior] = [e["resource"] for e in request["prefetch"]["medications"]["entry"]]
    prior["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["end"] = end
    return client.post(SELECT, json=request).json()


@pytest.mark.parametrize(
    ("course", "end", "fires"),
    [
        (LINEZOLID, "2026-11-20T21:00:00Z", True),  # 15 hours before noon
        (LINEZOLID, "2026-11-20T12:30:00Z", True),  # 23.5 hours
        (LINEZOLID, "2026-11-20T11:30:00Z", False),  # 24.5 hours: its window closed
        (LINEZOLID, "2026-11-20", False),  # a date alone: ended 1 day ago (§1)
        (PHENELZINE, "2026-11-07T21:00:00Z", True),  # 13 days 15 hours
        (PHENELZINE, "2026-11-07T11:00:00Z", False),  # 14 days 1 hour
        (PHENELZINE, "2026-11-07", False),  # a date alone: 14 days ago (§1)
    ],
)
def test_a_washout_is_counted_in_hours_from_an_end_given_as_a_time(
    make_client: Callable[..., TestClient], course: str, end: str, fires: bool
) -> None:
    client = make_client(clock=Clock(NOON))
    assert (MAOI in rule_ids(_cards(client, course, end))) is fires


def test_the_card_says_how_long_ago_by_the_clock(make_client: Callable[..., TestClient]) -> None:
    body = _cards(make_client(clock=Clock(NOON)), LINEZOLID, "2026-11-20T21:00:00Z")
    [card] = [c for c in body["cards"] if c["source"]["topic"]["code"] == MAOI]
    assert card["indicator"] == "critical"
    assert "2026-11-20 21:00, 15 hours ago" in card["detail"], card["detail"]


@pytest.mark.parametrize(
    ("status", "end", "clock", "said"),
    [
        ("active", "2026-11-20T21:00:00Z", Clock(NOON), "(active, dosing ended 2026-11-20 21:00, 15 hours ago)"),
        (
            "completed",
            "2026-11-20T23:50:00Z",
            Clock(NOON - 11 * 3600 - 40 * 60),  # 00:20 UTC
            "(completed, dosing ended 2026-11-20 23:50, under an hour ago)",
        ),
    ],
    ids=["active-15-hours", "half-an-hour"],
)
def test_a_course_whose_dosing_ended_hours_ago_is_said_so(
    make_client: Callable[..., TestClient], status: str, end: str, clock: Clock, said: str
) -> None:
    """An active linezolid whose dosing ended 15 hours ago got no card where a completed one did
    (a review of the diff); half an hour is said as such, not "0 hours"."""
    request = fixture(LINEZOLID)
    [prior] = [e["resource"] for e in request["prefetch"]["medications"]["entry"]]
    prior["status"] = status
    prior["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["end"] = end
    body = make_client(clock=clock).post(SELECT, json=request).json()
    [card] = [c for c in body["cards"] if c["source"]["topic"]["code"] == MAOI]
    assert said in card["detail"], card["detail"]
