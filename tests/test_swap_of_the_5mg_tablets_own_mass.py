"""A draft already of the 5 mg tablet, two a dose (10 mg), dispensing a mass: its start-dose swap
is to the same product, one tablet a dose, and was capped by the tablets the mass makes, not by
the days it lasts at the draft's dose, as the swap of a 10 mg draft is (a pharmacist's review:
``tests.test_mass_and_tablets_compared``). 450 mg at 10 mg three times a day lasts 15 days: the
swap sent 63 tablets for 21 days, and 210 mg (7 days) bounded at 21 days 42 tablets for 14. It
now dispenses as the 10 mg draft's swap does: the tablets, one a dose, for the days the mass
lasts. The duration card's own update keeps two a dose, so the mass's own tablets (90) stay its cap."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import fixture
from tests.test_mass_and_tablets_compared import mg
from tests.test_swap_of_a_bottle import START_DOSE, days, swap_of, tablets, updates

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
# (code, name, tablets a dose) of two drafts of 10 mg a dose.
FIVE_MG_TWICE = ("828320", "Cyclobenzaprine hydrochloride 5 MG Oral Tablet", 2)
TEN_MG_ONCE = ("828348", "Cyclobenzaprine hydrochloride 10 MG Oral Tablet", 1)


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def request_for(
    rule: str, drug: tuple[str, str, int], dispense: dict[str, Any], *, bounds: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``rule``'s draft as ``drug``, 10 mg three times a day, dispensing ``dispense``."""
    code, name, per_dose = drug
    request = fixture(START_DOSE[rule])
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": code, "display": name}], "text": name}
    [dosage] = draft["dosageInstruction"]
    dosage["timing"]["repeat"]["frequency"] = 3
    if bounds is not None:
        dosage["timing"]["repeat"]["boundsDuration"] = bounds
    dosage["doseAndRate"] = [{"doseQuantity": tablets(per_dose)}]
    draft["dispenseRequest"] = dispense
    return request


@pytest.mark.parametrize("rule", START_DOSE)
@pytest.mark.parametrize("drug", [FIVE_MG_TWICE, TEN_MG_ONCE], ids=["5-mg-two-a-dose", "10-mg-one-a-dose"])
def test_a_mass_caps_the_swap_at_the_days_it_lasts(client: TestClient, rule: str, drug: tuple[str, str, int]) -> None:
    """450 mg for a month at 10 mg three times a day: 15 days, 45 tablets of 5 mg one a dose,
    their supply 15 days, within the 21-day limit the duration card composes into the swap."""
    dispense = swap_of(client, rule, request_for(rule, drug, {"quantity": mg(450), "expectedSupplyDuration": days(30)}))
    assert dispense["quantity"] == tablets(45)
    assert dispense["expectedSupplyDuration"] == days(15)


@pytest.mark.parametrize("rule", START_DOSE)
@pytest.mark.parametrize("drug", [FIVE_MG_TWICE, TEN_MG_ONCE], ids=["5-mg-two-a-dose", "10-mg-one-a-dose"])
def test_a_mass_bounded_past_its_days_is_counted_for_them(
    client: TestClient, rule: str, drug: tuple[str, str, int]
) -> None:
    """210 mg bounded at 21 days: the mass lasts 7 of them, 21 tablets, not the 42 it makes."""
    dispense = swap_of(client, rule, request_for(rule, drug, {"quantity": mg(210)}, bounds=days(21)))
    assert dispense == {"quantity": tablets(21)}


@pytest.mark.parametrize("rule", START_DOSE)
def test_the_duration_update_of_the_same_draft_is_capped_by_the_mass_tablets(client: TestClient, rule: str) -> None:
    """The duration card's own update keeps two tablets a dose: 450 mg are 90 of them, 15 days."""
    request = request_for(rule, FIVE_MG_TWICE, {"quantity": mg(450), "expectedSupplyDuration": days(30)})
    kept = updates(client, request)["cyclobenzaprine-duration"]
    assert kept["dosageInstruction"][0]["doseAndRate"] == [{"doseQuantity": tablets(2)}]
    assert kept["dispenseRequest"]["quantity"] == tablets(90)
    assert kept["dispenseRequest"]["expectedSupplyDuration"] == days(15)
