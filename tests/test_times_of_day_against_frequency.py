"""An instruction whose times of day (``timeOfDay``, ``when``) count MORE doses a day than its
``frequency`` over its ``period`` contradicts itself (R4: the two are not to be combined). Its
dose is checked at the times (the larger count), how long a quantity lasts at the frequency (the
longer course: 90 tablets once a day at 08, 14 and 20 h is 90 days, and the duration warning
says so), and it is offered no one-click change (an update would write one reading of two; the
21-day update had written 21 tablets, a week's at the times listed), the card saying why, but
for the sublingual swap, which writes its whole timing anew. Fewer times than the frequency
(twice a day, one time listed) is shorthand: the frequency stands. "With meals", "before meals",
"after meals" (C, AC, PC) name no count of doses; CM, ACM, PCV... name one meal each. Where the
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
TIMES_REASON = "times of day count more doses a day than its frequency says"


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
def test_three_times_beside_once_a_day_is_the_longer_course_and_no_update(client: TestClient, times: Any) -> None:
    """The adversarial review's order: no 21-tablet update, and the warning reads 90 days (the
    frequency's course), not 30 (the times')."""
    card = card_of(client, ninety_tablets({**DAILY, **times}))
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 90 days planned"
    assert "(90 tablets at 1 a day)" in card["detail"]
    assert "suggestions" not in card or not card["suggestions"]
    assert TIMES_REASON in card["detail"]


def test_63_tablets_once_a_day_at_three_times_warns_of_63_days(client: TestClient) -> None:
    """Read at the times' three a day it was 21 days and no card: the duration warning silenced."""
    request = ninety_tablets({**DAILY, **THREE_TIMES})
    request["context"]["draftOrders"]["entry"][0]["resource"]["dispenseRequest"]["quantity"]["value"] = 63
    card = card_of(client, request)
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 63 days planned"
    assert TIMES_REASON in card["detail"]
    assert not card.get("suggestions")


def test_a_frequency_above_the_times_listed_stands_and_is_updated(client: TestClient) -> None:
    """Three a day at two times of day: three a day (30 days), and the 21-day update of 63."""
    card = card_of(client, ninety_tablets({**DAILY, "frequency": 3, "timeOfDay": ["08:00:00", "20:00:00"]}))
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned"
    assert TIMES_REASON not in card["detail"]
    [suggestion] = card["suggestions"]
    assert suggestion["actions"][0]["resource"]["dispenseRequest"]["quantity"]["value"] == 63


def test_twice_a_day_at_one_time_of_day_is_twice_a_day_and_updated(client: TestClient) -> None:
    card = card_of(client, ninety_tablets({**DAILY, "frequency": 2, "timeOfDay": ["08:00:00"]}))
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 45 days planned"
    assert TIMES_REASON not in card["detail"]
    [suggestion] = card["suggestions"]
    assert suggestion["actions"][0]["resource"]["dispenseRequest"]["quantity"]["value"] == 42


@pytest.mark.parametrize("meal", ["C", "AC", "PC"])
def test_three_a_day_with_meals_is_three_a_day_and_updated(client: TestClient, meal: str) -> None:
    """C, AC, PC say when (at, before, after a meal), not how many: the frequency is read."""
    card = card_of(client, ninety_tablets({**DAILY, "frequency": 3, "when": [meal]}))
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned"
    assert TIMES_REASON not in card["detail"]
    [suggestion] = card["suggestions"]
    assert suggestion["actions"][0]["resource"]["dispenseRequest"]["quantity"]["value"] == 63


def test_each_named_meal_is_a_dose(client: TestClient) -> None:
    """Before breakfast, lunch and dinner (ACM, ACD, ACV) beside once a day: three times, more
    than the frequency says: the order contradicts itself."""
    card = card_of(client, ninety_tablets({**DAILY, "when": ["ACM", "ACD", "ACV"]}))
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 90 days planned"
    assert TIMES_REASON in card["detail"]


def test_ten_mg_three_a_day_with_meals_keeps_the_5_mg_swap(client: TestClient) -> None:
    request = fixture(f"{OLDER}/fires-composed-swap-10mg-tid-30-days-age-70.json")
    repeat = request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["timing"]["repeat"]
    repeat["when"] = ["C"]
    card = card_of(client, request, OLDER)
    assert card["suggestions"][0]["label"].startswith(
        "Change to cyclobenzaprine 5 mg tablet, 1 tablet three times a day"
    )
    assert TIMES_REASON not in card["detail"]


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


def test_the_sublingual_swap_settles_the_contradiction_and_is_offered(client: TestClient) -> None:
    """2.8 mg once a day in the morning and at bedtime: the warning, and the swap to one tablet
    once a day at bedtime, which writes the whole timing anew (it had been Remove alone)."""
    request = fixture(f"{OLDER}/fires-v2-any-dose-sublingual-2.8mg-age-70-info.json")
    repeat = request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["timing"]["repeat"]
    repeat["when"] = ["MORN", "HS"]
    card = card_of(client, request, OLDER)
    assert "(2.8 mg twice a day ordered)" in card["summary"]
    swap, _ = card["suggestions"]
    assert swap["label"].startswith("Change to 1 sublingual 2.8 mg tablet once a day at bedtime")
    [dosage] = swap["actions"][0]["resource"]["dosageInstruction"]
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"]}
    assert TIMES_REASON not in card["detail"]


def test_once_a_week_at_a_time_of_day_is_weekly_and_updated(client: TestClient) -> None:
    """Over a week the times of day are the dosing day's: once a week at 08 h, 90 tablets, is 630
    days (it had been read as once a day, 90 days, and offered no update)."""
    card = card_of(client, ninety_tablets({"frequency": 1, "period": 1, "periodUnit": "wk", "timeOfDay": ["08:00:00"]}))
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 630 days planned"
    assert [s["label"] for s in card["suggestions"]] == ["Limit to 21 days (keeps 10 mg)"]
    assert TIMES_REASON not in card["detail"]


def test_with_meals_alone_says_no_rate(client: TestClient) -> None:
    """``when`` C alone (with meals, no frequency): how often is not said, and the card asks for
    a duration (it had been read once a day, 90 days, and updated to 21 tablets)."""
    card = card_of(client, ninety_tablets({"when": ["C"]}))
    assert card["summary"] == "Specify a cyclobenzaprine duration of at most 21 days"
    assert not card.get("suggestions")
