"""An instruction whose times of day (``timeOfDay``, ``when``) count other doses a day than its
``frequency`` over its ``period`` contradicts itself (R4: the two are not to be combined). It is
read at the larger count: 90 tablets once a day at 08, 14 and 20 h had been a 90-day course, and
the 21-day update wrote 21 tablets, a week's at the times listed. The order is offered no
one-click change (an update would write one reading of two), and the card says why. Where the
two agree, or the times stand alone, nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture

DURATION = "cyclobenzaprine-duration"
OLDER = "cyclobenzaprine-older-adult"
THREE_TIMES = {"timeOfDay": ["08:00:00", "14:00:00", "20:00:00"]}
THREE_WHEN = {"when": ["MORN", "AFT", "EVE"]}
# What the card says of an order offered no update for it.
TIMES_REASON = "times of day and its frequency give different doses a day"


@pytest.fixture
def client(module_client: TestClient) -> TestClient:
    return module_client


def ninety_tablets(repeat: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's order of one 10 mg tablet, 90 tablets and no supply, its timing ``repeat``."""
    request = fixture(f"{DURATION}/fires-sandbox-30-day-supply.json")
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["timing"]["repeat"] = repeat
    draft["dispenseRequest"] = {"quantity": {"value": 90, "unit": "tablet"}}
    return request


def card_of(client: TestClient, request: dict[str, Any], rule: str = DURATION) -> dict[str, Any]:
    [card] = cards_for(client.post(SELECT, json=request).json(), rule)
    return card


DAILY = {"frequency": 1, "period": 1, "periodUnit": "d"}


@pytest.mark.parametrize("times", [THREE_TIMES, THREE_WHEN], ids=["timeOfDay", "when"])
def test_three_times_beside_once_a_day_is_three_a_day_and_no_update(client: TestClient, times: Any) -> None:
    card = card_of(client, ninety_tablets({**DAILY, **times}))
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned"
    assert "(90 tablets at 3 a day)" in card["detail"]
    assert "suggestions" not in card or not card["suggestions"]
    assert TIMES_REASON in card["detail"]


def test_a_frequency_above_the_times_listed_is_read_too(client: TestClient) -> None:
    """Three a day at two times of day: three a day, the larger (30 days), and no update."""
    card = card_of(client, ninety_tablets({**DAILY, "frequency": 3, "timeOfDay": ["08:00:00", "20:00:00"]}))
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned"
    assert TIMES_REASON in card["detail"]


@pytest.mark.parametrize(
    "repeat",
    [THREE_TIMES, {"period": 1, "periodUnit": "d", **THREE_TIMES}, {**DAILY, "frequency": 3, **THREE_TIMES}],
    ids=["times-alone", "period-alone", "three-a-day-agrees"],
)
def test_times_that_agree_keep_their_update(client: TestClient, repeat: dict[str, Any]) -> None:
    card = card_of(client, ninety_tablets(repeat))
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned"
    assert TIMES_REASON not in card["detail"]
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    assert action["resource"]["dispenseRequest"]["quantity"]["value"] == 63


def test_the_older_adult_rule_reads_the_larger_count(client: TestClient) -> None:
    """One 2.8 mg sublingual tablet "once a day" at three times of day is not the label's once a
    day at 65 and older: the warning to take it once a day, not the info card of its low dose."""
    request = fixture(f"{OLDER}/fires-v2-any-dose-sublingual-2.8mg-age-70-info.json")
    repeat = request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["timing"]["repeat"]
    repeat.update(THREE_TIMES)
    card = card_of(client, request, OLDER)
    assert card["indicator"] == "warning"
    assert "(2.8 mg three times a day ordered)" in card["summary"]


def test_once_a_week_at_a_time_of_day_is_weekly_and_updated(client: TestClient) -> None:
    """Over a week the times of day are the dosing day's: once a week at 08 h, 90 tablets, is 630
    days (it had been read as once a day, 90 days, and offered no update)."""
    card = card_of(client, ninety_tablets({"frequency": 1, "period": 1, "periodUnit": "wk", "timeOfDay": ["08:00:00"]}))
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 630 days planned"
    assert [s["label"] for s in card["suggestions"]] == ["Limit to 21 days (keeps 10 mg)"]
    assert TIMES_REASON not in card["detail"]
