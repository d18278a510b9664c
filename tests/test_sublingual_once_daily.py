"""The sublingual product's low dose is a dose and a frequency (Tonmya's label: 2.8 mg once daily
in older adults and in mild hepatic impairment), in ``cyclobenzaprine-hepatic-impairment`` and
``cyclobenzaprine-older-adult``: one 2.8 mg tablet three times a day is 8.4 mg a day, which a
reading of the dose alone called "the low dose" ("follows the label"). More than once a day, as
§1 reads how often (``frequencyMax``, an as-needed code's most), warns and offers one tablet
once a day; once a day or less keeps the info cards; how often not given is judged by the dose,
as before (an incomplete draft of a product taken once daily), and no card says it follows the label."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture

HEPATIC = "cyclobenzaprine-hepatic-impairment"
OLDER_ADULT = "cyclobenzaprine-older-adult"
# Tonmya 2.8 mg once a day: with unspecified cirrhosis (K74.60, severity not recorded), with
# chronic hepatitis C (mild), at 70.
CIRRHOSIS = f"{HEPATIC}/fires-cirrhosis-unrecorded-sublingual-2.8mg-at-bedtime-info.json"
HEPATITIS = f"{HEPATIC}/silent-sublingual-2.8mg-hepatitis-c.json"
AGE_70 = f"{OLDER_ADULT}/fires-v2-any-dose-sublingual-2.8mg-age-70-info.json"
DAILY = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def with_timing(name: str, timing: dict[str, Any] | None, **step: Any) -> dict[str, Any]:
    """The fixture with its one instruction's timing replaced (None: no timing at all)."""
    request = fixture(name)
    [dosage] = request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"]
    dosage.pop("timing", None)
    if timing is not None:
        dosage["timing"] = timing
    dosage.update(step)
    return request


def card_of(client: TestClient, request: dict[str, Any], rule_id: str) -> dict[str, Any] | None:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    cards = cards_for(response.json(), rule_id)
    assert len(cards) <= 1
    return cards[0] if cards else None


MORE_THAN_DAILY = [
    ({"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}, {}, "2.8 mg three times a day"),
    ({"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}, {}, "2.8 mg twice a day"),
    ({"repeat": {"frequency": 1, "period": 12, "periodUnit": "h"}}, {}, "2.8 mg twice a day"),
    ({"code": {"coding": [{"code": "TID"}], "text": "TID PRN"}}, {}, "2.8 mg up to three times a day"),
    (
        {"repeat": {"frequency": 1, "frequencyMax": 2, "period": 1, "periodUnit": "d"}},
        {"asNeededBoolean": True},
        "2.8 mg up to twice a day",
    ),
]
RULES = [(CIRRHOSIS, HEPATIC), (HEPATITIS, HEPATIC), (AGE_70, OLDER_ADULT)]


@pytest.mark.parametrize(("timing", "step", "said"), MORE_THAN_DAILY)
@pytest.mark.parametrize(("name", "rule_id"), RULES)
def test_sublingual_2_8_mg_more_than_once_a_day_warns_and_offers_one_tablet_once_a_day(
    client: TestClient, name: str, rule_id: str, timing: dict[str, Any], step: dict[str, Any], said: str
) -> None:
    card = card_of(client, with_timing(name, timing, **step), rule_id)
    assert card is not None
    assert card["indicator"] == "warning"
    assert f"({said} ordered)" in card["summary"]
    assert f"**{said}**" in card["detail"]
    assert "one 2.8 mg tablet once a day" in card["detail"]
    assert "follows the label" not in card["detail"]
    swap = card["suggestions"][0]
    assert swap["label"].startswith("Change to 1 sublingual 2.8 mg tablet once a day at bedtime")
    [update] = swap["actions"]
    [dosage] = update["resource"]["dosageInstruction"]
    assert dosage["timing"] == {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"]}}
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1


def test_the_pharmacists_case_three_times_a_day_with_cirrhosis_is_no_longer_the_low_dose(client: TestClient) -> None:
    """Tonmya 2.8 mg three times a day with cirrhosis of unrecorded severity: the warning, which
    keeps the severity note, not the info card saying this low dose follows the label."""
    name = f"{HEPATIC}/fires-warning-sublingual-2.8mg-three-times-a-day-cirrhosis.json"
    card = card_of(client, fixture(name), HEPATIC)
    assert card is not None
    assert card["indicator"] == "warning"
    assert "**2.8 mg three times a day**" in card["detail"]
    assert "Its severity is not recorded" in card["detail"]


@pytest.mark.parametrize(
    ("timing", "said"),
    [
        (DAILY, "2.8 mg once a day"),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"]}}, "2.8 mg once a day"),
        ({"repeat": {"frequency": 1, "period": 2, "periodUnit": "d"}}, "2.8 mg once every 2 days"),
    ],
)
def test_sublingual_2_8_mg_once_a_day_or_less_keeps_the_info_cards(
    client: TestClient, timing: dict[str, Any], said: str
) -> None:
    cirrhosis = card_of(client, with_timing(CIRRHOSIS, timing), HEPATIC)
    assert cirrhosis is not None
    assert cirrhosis["indicator"] == "info"
    assert f"sublingual cyclobenzaprine **{said}**" in cirrhosis["detail"]
    assert "the sublingual label's dose is one 2.8 mg tablet once a day" in cirrhosis["detail"]
    assert card_of(client, with_timing(HEPATITIS, timing), HEPATIC) is None
    older = card_of(client, with_timing(AGE_70, timing), OLDER_ADULT)
    assert older is not None
    assert older["indicator"] == "info"
    assert f"sublingual cyclobenzaprine **{said}**" in older["detail"]
    assert "less frequent" not in older["detail"]


def test_sublingual_2_8_mg_how_often_not_given_is_judged_by_its_dose_and_said_so(client: TestClient) -> None:
    """No frequency read: the dose alone is judged, as before (silent in mild impairment, the info
    cards), and the cards give the dose per dose beside the label's once a day, claiming neither
    that the order follows the label nor that it could be taken less often."""
    assert card_of(client, with_timing(HEPATITIS, None), HEPATIC) is None
    cirrhosis = card_of(client, with_timing(CIRRHOSIS, None), HEPATIC)
    assert cirrhosis is not None
    assert cirrhosis["indicator"] == "info"
    assert "**2.8 mg per dose**" in cirrhosis["detail"]
    assert "follows the label" not in cirrhosis["detail"]
    older = card_of(client, with_timing(AGE_70, None), OLDER_ADULT)
    assert older is not None
    assert older["indicator"] == "info"
    assert "**2.8 mg per dose**; its label's dose in older adults is one 2.8 mg tablet once a day" in older["detail"]
    assert "less frequent" not in older["detail"]


def test_sublingual_5_6_mg_once_a_day_still_warns_by_its_dose(client: TestClient) -> None:
    request = fixture(f"{HEPATIC}/fires-warning-sublingual-5.6mg-hepatitis-c.json")
    card = card_of(client, request, HEPATIC)
    assert card is not None
    assert card["indicator"] == "warning"
    assert "(5.6 mg once a day ordered)" in card["summary"]


def test_a_sublingual_taper_is_judged_by_its_most_frequent_step(client: TestClient) -> None:
    """Twice a day for 3 days, then once a day: §1 reads the highest frequency, and the card says
    it is the most the order allows."""
    request = fixture(AGE_70)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    [dosage] = draft["dosageInstruction"]
    three_days = {"value": 3, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
    twice = {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "boundsDuration": three_days}}
    draft["dosageInstruction"] = [{**dosage, "timing": twice}, {**dosage, "timing": DAILY}]
    card = card_of(client, request, OLDER_ADULT)
    assert card is not None
    assert card["indicator"] == "warning"
    assert "(2.8 mg up to twice a day ordered)" in card["summary"]
