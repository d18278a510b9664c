"""The 5 mg swap of a draft dispensing "1 bottle" (or a package: a unit no tablet count is read
from) sent back "1 bottle" as the quantity of its 5 mg tablets: capped by the draft's quantity as
a bare number, 30 tablets were more than "1", and the draft's own words came back. A swap now
counts the tablets for the days the draft's supply or bounds give (``rules.product_swap.recount``),
and where no days say how long the bottle lasts writes no quantity, as it does for a liquid's
volume whose days are not read: none, not a guess. The duration card's own update, of the drug
the draft names, keeps "1 bottle" in its own words.

Only a container is so read: "30 each" (UCUM's "1"), NCPDP's "30 EA", as EHRs write tablets too,
read as a bottle with no days said, went out with no quantity at all, and a 30-day one as 63
tablets: a fill above the draft's 30 (clinical specification §2). They stay the cap, in the
draft's own words, as before.

Any other unit is a container however spelt: only ten container words (and their plurals) were,
so "1 btl", "1 pkg", "1 BT", "1 Bottle(s)", "1 tube" or "1 bottle " (a space after it) went back as
the quantity of the 5 mg tablets again, for the 21 days the limit keeps."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture
from tests.test_swap_counts_a_taper import UCUM, tablets
from tests.test_swap_of_a_volume import days

# A 10 mg draft, one tablet: at 65, and with hepatitis C (mild impairment): each offers the 5 mg swap.
START_DOSE = {
    "cyclobenzaprine-older-adult": "cyclobenzaprine-older-adult/fires-age-65-10mg.json",
    "cyclobenzaprine-hepatic-impairment": "cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-10mg.json",
}
BOTTLE = {"value": 1, "unit": "bottle"}
PACKAGE = {"value": 1, "unit": "package", "system": UCUM, "code": "{package}"}
# A container by its words where its code says none: UCUM's "1".
BOTTLE_OF_1 = {"value": 1, "unit": "Bottle", "system": UCUM, "code": "1"}
# Containers spelt as EHRs spell them, none of them a word once listed.
SPELT = {word: {"value": 1, "unit": word} for word in ("btl", "pkg", "BT", "Bottle(s)", "tube", "bottle ")}
# Units as often of a tablet as of a package: no container.
EACH = {
    "each": {"value": 30, "unit": "each", "system": UCUM, "code": "1"},
    "{each}": {"value": 30, "unit": "each", "system": UCUM, "code": "{each}"},
    "EA": {"value": 30, "unit": "EA"},
    "ea": {"value": 30, "unit": "ea"},
}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def request_for(rule: str, dispense: dict[str, Any], *, bounds: dict[str, Any] | None = None) -> dict[str, Any]:
    """``rule``'s 10 mg draft, one tablet three times a day, dispensing ``dispense``."""
    request = fixture(START_DOSE[rule])
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    repeat = draft["dosageInstruction"][0]["timing"]["repeat"]
    repeat["frequency"] = 3
    if bounds is not None:
        repeat["boundsDuration"] = bounds
    draft["dispenseRequest"] = copy.deepcopy(dispense)
    return request


def updates(client: TestClient, request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each card's update, by its rule."""
    return {
        card["source"]["topic"]["code"]: action["resource"]
        for card in answered(client, request)["cards"]
        for suggestion in card.get("suggestions", ())
        for action in suggestion["actions"]
        if action["type"] == "update"
    }


def swap_of(client: TestClient, rule: str, request: dict[str, Any]) -> dict[str, Any]:
    """The dispense request of ``rule``'s 5 mg swap."""
    swap = updates(client, request)[rule]
    assert swap["medicationCodeableConcept"]["coding"][0]["code"] == "828320"
    dispense: dict[str, Any] = swap.get("dispenseRequest", {})
    return dispense


@pytest.mark.parametrize("rule", START_DOSE)
@pytest.mark.parametrize("unit", [BOTTLE, PACKAGE, BOTTLE_OF_1], ids=["bottle", "package", "bottle-of-1"])
def test_a_bottle_for_a_stated_supply_is_counted_in_tablets_for_it(
    client: TestClient, rule: str, unit: dict[str, Any]
) -> None:
    """A 10-day bottle: no duration card; the swap's 30 tablets for the draft's own 10 days."""
    dispense = swap_of(client, rule, request_for(rule, {"quantity": unit, "expectedSupplyDuration": days(10)}))
    assert dispense == {"quantity": tablets(30), "expectedSupplyDuration": days(10)}


@pytest.mark.parametrize("rule", START_DOSE)
def test_a_bottle_for_bounded_days_is_counted_for_them(client: TestClient, rule: str) -> None:
    dispense = swap_of(client, rule, request_for(rule, {"quantity": BOTTLE}, bounds=days(10)))
    assert dispense == {"quantity": tablets(30)}


@pytest.mark.parametrize("rule", START_DOSE)
def test_a_bottle_for_a_month_is_counted_for_the_21_days_the_limit_keeps(client: TestClient, rule: str) -> None:
    dispense = swap_of(client, rule, request_for(rule, {"quantity": BOTTLE, "expectedSupplyDuration": days(30)}))
    assert dispense == {"quantity": tablets(63), "expectedSupplyDuration": days(21), "numberOfRepeatsAllowed": 0}


@pytest.mark.parametrize("rule", START_DOSE)
def test_a_bottle_whose_days_are_not_said_gets_no_quantity(client: TestClient, rule: str) -> None:
    """No supply, no bounds: how many tablets the bottle held, no number says. The duration card
    (unknown duration) composes its 21 days into the swap, which then names no quantity rather
    than 63 tablets the bottle may not hold; its own update keeps the draft's "1 bottle"."""
    request = request_for(rule, {"quantity": BOTTLE})
    dispense = swap_of(client, rule, request)
    assert dispense == {"expectedSupplyDuration": days(21), "numberOfRepeatsAllowed": 0}
    assert updates(client, request)["cyclobenzaprine-duration"]["dispenseRequest"]["quantity"] == BOTTLE


@pytest.mark.parametrize("rule", START_DOSE)
def test_a_weeks_bottle_with_refills_is_split_into_weeks_of_tablets(client: TestClient, rule: str) -> None:
    """A 7-day bottle with 3 refills, limited to 21 days: three fills of a week's 21 tablets,
    each within the draft's own fill (it had no swap: the limit could not be split by "1")."""
    request = request_for(rule, {"quantity": BOTTLE, "expectedSupplyDuration": days(7), "numberOfRepeatsAllowed": 3})
    assert swap_of(client, rule, request) == {
        "quantity": tablets(21),
        "expectedSupplyDuration": days(7),
        "numberOfRepeatsAllowed": 2,
    }
    [card] = cards_for(answered(client, request), rule)
    assert card["suggestions"][0]["label"].endswith("(limited to 21 days)")


@pytest.mark.parametrize("rule", START_DOSE)
@pytest.mark.parametrize("unit", EACH)
def test_thirty_each_whose_days_are_not_said_stay_the_cap(client: TestClient, rule: str, unit: str) -> None:
    """No supply, no bounds: the duration card's 21 days composed into the swap, capped at the
    draft's 30 in its own words; read as a bottle, no quantity went, and 63 tablets could be filled."""
    dispense = swap_of(client, rule, request_for(rule, {"quantity": EACH[unit]}))
    assert dispense == {"quantity": EACH[unit], "expectedSupplyDuration": days(21), "numberOfRepeatsAllowed": 0}


@pytest.mark.parametrize("rule", START_DOSE)
@pytest.mark.parametrize("unit", EACH)
def test_thirty_each_for_a_month_are_never_filled_as_more(client: TestClient, rule: str, unit: str) -> None:
    """30 each for 30 days, limited to 21: 63 tablets were more than the 30 the draft ordered."""
    request = request_for(rule, {"quantity": EACH[unit], "expectedSupplyDuration": days(30)})
    dispense = swap_of(client, rule, request)
    assert dispense == {"quantity": EACH[unit], "expectedSupplyDuration": days(21), "numberOfRepeatsAllowed": 0}


@pytest.mark.parametrize("rule", START_DOSE)
@pytest.mark.parametrize("unit", EACH)
def test_thirty_each_for_ten_days_are_thirty_tablets(client: TestClient, rule: str, unit: str) -> None:
    """Where the days say it (the draft's own 10), the swap counts its tablets: 30, no more."""
    request = request_for(rule, {"quantity": EACH[unit], "expectedSupplyDuration": days(10)})
    assert swap_of(client, rule, request) == {"quantity": tablets(30), "expectedSupplyDuration": days(10)}


@pytest.mark.parametrize("rule", START_DOSE)
@pytest.mark.parametrize("unit", SPELT)
def test_a_container_however_spelt_for_a_month_is_counted_in_tablets(client: TestClient, rule: str, unit: str) -> None:
    """1 btl for 30 days, limited to 21: 63 tablets for the 21 days, never "1 btl" of 5 mg tablets."""
    request = request_for(rule, {"quantity": SPELT[unit], "expectedSupplyDuration": days(30)})
    dispense = swap_of(client, rule, request)
    assert dispense == {"quantity": tablets(63), "expectedSupplyDuration": days(21), "numberOfRepeatsAllowed": 0}


@pytest.mark.parametrize("rule", START_DOSE)
@pytest.mark.parametrize("unit", SPELT)
def test_a_container_however_spelt_whose_days_are_not_said_gets_no_quantity(
    client: TestClient, rule: str, unit: str
) -> None:
    dispense = swap_of(client, rule, request_for(rule, {"quantity": SPELT[unit]}))
    assert dispense == {"expectedSupplyDuration": days(21), "numberOfRepeatsAllowed": 0}


@pytest.mark.parametrize("rule", START_DOSE)
@pytest.mark.parametrize("spelt", ["tablet(s)", " Tablets ", "{tablet} "])
def test_tablets_however_spelt_stay_a_count(client: TestClient, rule: str, spelt: str) -> None:
    """30 tablets for 30 days, limited to 21: the draft's 30, never the 63 a bottle's 21 days make."""
    quantity = {"value": 30, "unit": spelt, "system": UCUM, "code": "1"}
    dispense = swap_of(client, rule, request_for(rule, {"quantity": quantity, "expectedSupplyDuration": days(30)}))
    assert dispense == {"quantity": quantity, "expectedSupplyDuration": days(21), "numberOfRepeatsAllowed": 0}
