"""The 5 mg swap of a liquid dispenses tablets, never the draft's volume: "cyclobenzaprine 1 mg/mL
oral suspension", 10 mL three times a day, 300 mL and no duration, was swapped to the 5 mg
tablet with 300 mL dispensed (a pharmacy may fill 300 tablets, 100 days) and no duration, while
the duration card fired on the same order and the tablet order alike was limited to 21 days, 63
tablets (a pharmacist's review). The volume gives no units a day, so the duration card offered
its limit to no swap (clinical specification §2, "Suggestions compose": it composes whenever
the card fires). Each case beside the tablet order alike, whose swap was already right."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture
from tests.test_swap_counts_a_taper import UCUM, tablets

OLDER_ADULT = "cyclobenzaprine-older-adult/fires-age-76-liquid-300-ml-swap-limited-to-21-days-of-tablets.json"
HEPATIC = (
    "cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-liquid-300-ml-swap-limited-to-21-days-of-tablets.json"
)
PRIOR_COURSE = "cyclobenzaprine-duration/fires-cumulative-prior-course.json"
START_DOSE = {OLDER_ADULT: "cyclobenzaprine-older-adult", HEPATIC: "cyclobenzaprine-hepatic-impairment"}
TEN_MG = {
    "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "828348"}],
    "text": "Cyclobenzaprine hydrochloride 10 MG Oral Tablet",
}
TONMYA = {"text": "Tonmya 2.8 mg sublingual tablet"}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def days(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "days", "system": UCUM, "code": "d"}


def millilitres(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "mL", "system": UCUM, "code": "mL"}


def request_for(
    name: str, fill: dict[str, Any], *, tablet: bool = False, medication: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``name``'s liquid draft (10 mL three times a day) dispensing ``fill``; ``tablet``: the
    10 mg tablet instead, one three times a day, the order alike in tablets."""
    request = fixture(name)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dispenseRequest"] = copy.deepcopy(fill)
    if tablet:
        draft["medicationCodeableConcept"] = copy.deepcopy(TEN_MG)
        draft["dosageInstruction"][0]["doseAndRate"] = [{"doseQuantity": tablets(1)}]
    if medication is not None:
        draft["medicationCodeableConcept"] = copy.deepcopy(medication)
    return request


def swap_of(client: TestClient, request: dict[str, Any], rule: str) -> tuple[str, dict[str, Any]]:
    """The label and the resource of the dose change ``rule``'s card offers."""
    body = answered(client, request)
    [(label, resource)] = [
        (suggestion["label"], action["resource"])
        for card in cards_for(body, rule)
        for suggestion in card.get("suggestions", ())
        for action in suggestion["actions"]
        if action["type"] == "update"
    ]
    return label, resource


def bounds_of(resource: dict[str, Any]) -> dict[str, Any] | None:
    [dosage] = resource["dosageInstruction"]
    bounds: dict[str, Any] | None = dosage["timing"]["repeat"].get("boundsDuration")
    return bounds


def with_prior_course(request: dict[str, Any]) -> dict[str, Any]:
    """11 days of cyclobenzaprine already taken (a course from 2026-11-11): 10 of 21 remain."""
    request["prefetch"]["medications"] = fixture(PRIOR_COURSE)["prefetch"]["medications"]
    return request


@pytest.mark.parametrize("name", [OLDER_ADULT, HEPATIC], ids=["older-adult", "hepatic-impairment"])
@pytest.mark.parametrize(
    ("tablet", "dispensed"), [(False, 30), (True, 63)], ids=["liquid-300-ml-10-days", "unchanged-90-tablets"]
)
def test_the_swap_is_limited_to_21_days_of_tablets(client: TestClient, name: str, tablet: bool, dispensed: int) -> None:
    """Within 21 days, no more than the draft dispensed: 300 mL at 10 mL three times a day last
    10 days, 30 tablets (``tests.test_swap_keeps_the_days_dispensed``)."""
    fill = {"quantity": tablets(90)} if tablet else {"quantity": millilitres(300)}
    label, resource = swap_of(client, request_for(name, fill, tablet=tablet), START_DOSE[name])
    assert label.endswith("(limited to 21 days)")
    assert resource["medicationCodeableConcept"]["coding"][0]["code"] == "828320"
    assert resource["dispenseRequest"]["quantity"] == tablets(dispensed)
    assert resource["dispenseRequest"]["expectedSupplyDuration"] == days(dispensed // 3)
    assert resource["dispenseRequest"]["numberOfRepeatsAllowed"] == 0
    assert bounds_of(resource) == days(21)


@pytest.mark.parametrize("tablet", [False, True], ids=["liquid-300-ml", "unchanged-90-tablets"])
def test_the_swap_is_limited_to_what_remains_of_21_days(client: TestClient, tablet: bool) -> None:
    fill = {"quantity": tablets(90)} if tablet else {"quantity": millilitres(300)}
    request = with_prior_course(request_for(OLDER_ADULT, fill, tablet=tablet))
    label, resource = swap_of(client, request, START_DOSE[OLDER_ADULT])
    assert label.endswith("(limited to 10 days)")
    assert resource["dispenseRequest"]["quantity"] == tablets(30)
    assert resource["dispenseRequest"]["expectedSupplyDuration"] == days(10)
    assert bounds_of(resource) == days(10)


@pytest.mark.parametrize(
    ("fill", "dispensed", "bounds"),
    [({"quantity": millilitres(30)}, 3, days(21)), ({"quantity": tablets(30)}, 30, None)],
    ids=["liquid-30-ml-a-days-tablets", "unchanged-30-tablets-10-days"],
)
def test_a_volume_is_no_cap_in_tablets_where_a_count_is(
    client: TestClient, fill: dict[str, Any], dispensed: int, bounds: dict[str, Any] | None
) -> None:
    """30 mL is no count of tablets: capped as a bare number, the swap went back to 30 mL of the
    tablet. It lasts a day at 10 mL three times a day: 3 tablets, not 63 for the 21 days the
    limit allows. 30 tablets are a count: 10 days of the draft, 30 of the swap."""
    tablet = fill["quantity"]["unit"] == "tablet"
    _, resource = swap_of(client, request_for(OLDER_ADULT, fill, tablet=tablet), START_DOSE[OLDER_ADULT])
    assert resource["dispenseRequest"]["quantity"] == tablets(dispensed)
    assert bounds_of(resource) == bounds


@pytest.mark.parametrize("tablet", [False, True], ids=["liquid-300-ml", "unchanged-30-tablets"])
def test_a_supply_the_draft_states_counts_the_tablets(client: TestClient, tablet: bool) -> None:
    """A 10-day supply: no duration card, the swap's tablets for the draft's own 10 days."""
    fill = {"quantity": tablets(30) if tablet else millilitres(300), "expectedSupplyDuration": days(10)}
    body = answered(client, request_for(OLDER_ADULT, fill, tablet=tablet))
    assert not cards_for(body, "cyclobenzaprine-duration")
    _, resource = swap_of(client, request_for(OLDER_ADULT, fill, tablet=tablet), START_DOSE[OLDER_ADULT])
    assert resource["dispenseRequest"] == {"quantity": tablets(30), "expectedSupplyDuration": days(10)}
    assert bounds_of(resource) is None


@pytest.mark.parametrize("tablet", [False, True], ids=["30-ml-nothing-bounds-it", "unchanged-60-tablets"])
def test_the_sublingual_swap_dispenses_no_volume(client: TestClient, tablet: bool) -> None:
    """The sublingual product has no duration card (exempt): nothing bounds a swap of a volume,
    which dispenses no quantity rather than 30 mL of tablets; a count is recounted at one a day."""
    request = request_for(OLDER_ADULT, {"quantity": tablets(60) if tablet else millilitres(30)}, medication=TONMYA)
    request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0] = {
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": tablets(2)}],
    }
    label, resource = swap_of(client, request, START_DOSE[OLDER_ADULT])
    assert "limited" not in label
    assert resource.get("dispenseRequest") == ({"quantity": tablets(30)} if tablet else None)
    assert bounds_of(resource) is None


def test_the_duration_card_offers_no_update_of_a_liquid_of_its_own(client: TestClient) -> None:
    """The card's own update needs the draft's units a day (§2); the limit it composes does not."""
    [card] = cards_for(
        answered(client, request_for(OLDER_ADULT, {"quantity": millilitres(300)})), "cyclobenzaprine-duration"
    )
    assert card["indicator"] == "info"
    assert not card.get("suggestions")
