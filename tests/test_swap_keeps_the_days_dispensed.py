"""The 5 mg swap dispenses no more days than the draft did (clinical specification §2: "an
update's dispenseRequest.quantity never exceeds the draft's"; "Suggestions compose"). It writes
one 5 mg tablet a dose, so what the draft dispensed is kept as the days it lasts at the draft's
own dose (a pharmacist's review):

- a liquid: 30 mL at 10 mL three times a day is a day, 3 tablets; the swap wrote 63 tablets, 21
  days, whatever the volume (60 mL, 100 mL at 5 mL twice a day, 300 mL alike); where the days
  cannot be read (a dose in mg of a liquid), no quantity rather than 21 days' worth;
- a mass: 210 mg of the 10 mg tablet is 21 tablets, 7 days at three a day; the swap kept
  "210 mg", 42 tablets of 5 mg, 14 days; a first fill of 300 mg, 60 of 5 mg, 20 days where
  the draft's was 10.

Each case (fires) beside the order alike dispensing a count of 10 mg tablets for the same days
(unchanged), whose swap was already right: the two now agree."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture
from tests.test_mass_and_tablets_compared import mg
from tests.test_swap_counts_a_taper import UCUM, tablets
from tests.test_swap_of_a_volume import HEPATIC, OLDER_ADULT, START_DOSE, TEN_MG, days, millilitres

PRIOR_COURSE = "cyclobenzaprine-duration/fires-cumulative-prior-course.json"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def draft_of(
    name: str, dose: dict[str, Any], per_day: int, dispense: dict[str, Any], *, liquid: bool = True
) -> dict[str, Any]:
    """``name``'s request, its draft ``dose`` ``per_day`` times a day dispensing ``dispense``:
    the liquid of the fixture, or (not ``liquid``) the 10 mg tablet."""
    request = fixture(name)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"] = [
        {
            "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": copy.deepcopy(dose)}],
        }
    ]
    draft["dispenseRequest"] = copy.deepcopy(dispense)
    if not liquid:
        draft["medicationCodeableConcept"] = copy.deepcopy(TEN_MG)
    return request


def swap_of(client: TestClient, request: dict[str, Any], rule: str) -> dict[str, Any]:
    """The resource of the 5 mg swap ``rule``'s card offers."""
    [resource] = [
        action["resource"]
        for card in cards_for(answered(client, request), rule)
        for suggestion in card.get("suggestions", ())
        for action in suggestion["actions"]
        if action["type"] == "update"
    ]
    assert resource["medicationCodeableConcept"]["coding"][0]["code"] == "828320"
    return resource


def bounds_of(resource: dict[str, Any]) -> dict[str, Any] | None:
    [dosage] = resource["dosageInstruction"]
    bounds: dict[str, Any] | None = dosage["timing"]["repeat"].get("boundsDuration")
    return bounds


def dispensed(
    quantity: int | None, supply: int | None, refills: int | None = 0, fill: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A swap's whole dispense request: ``quantity`` tablets, a ``supply`` of days, ``refills``
    (None: not said), a first ``fill``."""
    expected: dict[str, Any] = {}
    if quantity is not None:
        expected["quantity"] = tablets(quantity)
    if supply is not None:
        expected["expectedSupplyDuration"] = days(supply)
    if refills is not None:
        expected["numberOfRepeatsAllowed"] = refills
    if fill is not None:
        expected["initialFill"] = fill
    return expected


# (rule's request, mL a dose, times a day, the liquid's dispense, the tablets alike, what the swap
# dispenses, its boundsDuration): the liquid's length is unknown (§1: no units a day), so the
# duration card fires (info) and its limit, 21 days, is composed; supply cut to the days kept.
VOLUMES = {
    "30-ml-a-day": (OLDER_ADULT, 10, 3, {"quantity": millilitres(30)}, 3, dispensed(3, 1), days(21)),
    "60-ml-two-days": (HEPATIC, 10, 3, {"quantity": millilitres(60)}, 6, dispensed(6, 2), days(21)),
    "100-ml-5-ml-twice-a-day": (OLDER_ADULT, 5, 2, {"quantity": millilitres(100)}, 20, dispensed(20, 10), days(21)),
    "300-ml-ten-days": (OLDER_ADULT, 10, 3, {"quantity": millilitres(300)}, 30, dispensed(30, 10), days(21)),
    "0.09-l-in-litres": (
        OLDER_ADULT,
        10,
        3,
        {"quantity": {"value": 0.09, "unit": "L", "system": UCUM, "code": "L"}},
        9,
        dispensed(9, 3),
        days(21),
    ),
}


@pytest.mark.parametrize("liquid", [True, False], ids=["fires-liquid", "unchanged-tablets-alike"])
@pytest.mark.parametrize("case", VOLUMES)
def test_a_swap_of_a_liquid_dispenses_the_days_it_lasts(client: TestClient, case: str, liquid: bool) -> None:
    name, volume, per_day, fill, count, expected, bounds = VOLUMES[case]
    dose = millilitres(volume) if liquid else tablets(1)
    request = draft_of(name, dose, per_day, fill if liquid else {"quantity": tablets(count)}, liquid=liquid)
    resource = swap_of(client, request, START_DOSE[name])
    # The tablets alike plan their days: no duration card, no limit composed.
    assert resource["dispenseRequest"] == (expected if liquid else {"quantity": tablets(count)})
    assert bounds_of(resource) == (bounds if liquid else None)


@pytest.mark.parametrize("liquid", [True, False], ids=["fires-liquid-refills", "unchanged-tablets-alike"])
def test_a_liquid_with_refills_keeps_its_fills(client: TestClient, liquid: bool) -> None:
    """300 mL (10 days) and 2 refills, 30 days: limited to 21, three fills of 21 tablets, 7 days
    each, none holding more days than a fill of the draft. The swap had one fill of 63."""
    ten_days = {"numberOfRepeatsAllowed": 2, "expectedSupplyDuration": days(10)}
    fill = {"quantity": millilitres(300) if liquid else tablets(30), **ten_days}
    request = draft_of(OLDER_ADULT, millilitres(10) if liquid else tablets(1), 3, fill, liquid=liquid)
    resource = swap_of(client, request, START_DOSE[OLDER_ADULT])
    assert resource["dispenseRequest"] == dispensed(21, 7, refills=2)
    assert bounds_of(resource) == days(21)


@pytest.mark.parametrize("liquid", [True, False], ids=["fires-liquid", "unchanged-tablets-alike"])
def test_a_liquid_within_what_remains_of_21_days(client: TestClient, liquid: bool) -> None:
    """11 days already taken, 10 remain: 60 mL at 10 mL three times a day last 2, 6 tablets (the
    6 tablets alike plan 2 days: 13 in all, no card)."""
    fill = {"quantity": millilitres(60) if liquid else tablets(6)}
    request = draft_of(OLDER_ADULT, millilitres(10) if liquid else tablets(1), 3, fill, liquid=liquid)
    request["prefetch"]["medications"] = fixture(PRIOR_COURSE)["prefetch"]["medications"]
    resource = swap_of(client, request, START_DOSE[OLDER_ADULT])
    assert resource["dispenseRequest"] == (dispensed(6, 2) if liquid else {"quantity": tablets(6)})
    assert bounds_of(resource) == (days(10) if liquid else None)


@pytest.mark.parametrize(
    ("dose", "per_day"), [(mg(10), 3), (millilitres(10), None)], ids=["fires-dose-in-mg", "unchanged-no-frequency"]
)
def test_a_liquid_whose_days_are_not_read_dispenses_no_quantity(
    client: TestClient, dose: dict[str, Any], per_day: int | None
) -> None:
    """10 mg of a liquid gives no mL a dose, and a dose of no frequency no days: not 63 tablets."""
    request = draft_of(OLDER_ADULT, dose, per_day or 3, {"quantity": millilitres(300)})
    if per_day is None:
        del request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["timing"]
    resource = swap_of(client, request, START_DOSE[OLDER_ADULT])
    assert "quantity" not in resource.get("dispenseRequest", {})
    assert "initialFill" not in resource.get("dispenseRequest", {})


@pytest.mark.parametrize("mass", [True, False], ids=["fires-210-mg", "unchanged-21-tablets"])
@pytest.mark.parametrize("name", [OLDER_ADULT, HEPATIC], ids=["older-adult", "hepatic-impairment"])
def test_a_swap_of_a_mass_keeps_its_days(client: TestClient, name: str, mass: bool) -> None:
    """210 mg of 10 mg, one tablet three times a day: 7 days, 21 tablets of 5 mg (not 42)."""
    request = draft_of(name, tablets(1), 3, {"quantity": mg(210) if mass else tablets(21)}, liquid=False)
    resource = swap_of(client, request, START_DOSE[name])
    assert resource["dispenseRequest"] == dispensed(21, None, refills=None)
    assert bounds_of(resource) is None


@pytest.mark.parametrize("mass", [True, False], ids=["fires-420-mg-two-a-dose", "unchanged-42-tablets"])
def test_a_mass_taken_two_tablets_a_dose_keeps_its_days(client: TestClient, mass: bool) -> None:
    """20 mg (two 10 mg tablets) three times a day, 420 mg: 7 days; one 5 mg tablet a dose, 21."""
    request = draft_of(HEPATIC, tablets(2), 3, {"quantity": mg(420) if mass else tablets(42)}, liquid=False)
    resource = swap_of(client, request, START_DOSE[HEPATIC])
    assert resource["dispenseRequest"] == dispensed(21, None, refills=None)


@pytest.mark.parametrize("mass", [True, False], ids=["fires-300-mg-first-fill", "unchanged-30-tablets-first"])
def test_a_first_fill_of_a_mass_keeps_its_days(client: TestClient, mass: bool) -> None:
    """90 tablets for 30 days, the first fill 300 mg: 30 tablets, 10 days, of 5 mg as of 10 mg
    (kept as 300 mg, 60 of 5 mg, 20 days); the course limited to 21 days, 63."""
    first = {"quantity": mg(300) if mass else tablets(30)}
    fill = {"quantity": tablets(90), "expectedSupplyDuration": days(30), "initialFill": first}
    request = draft_of(OLDER_ADULT, tablets(1), 3, fill, liquid=False)
    resource = swap_of(client, request, START_DOSE[OLDER_ADULT])
    assert resource["dispenseRequest"] == dispensed(63, 21, fill={"quantity": tablets(30)})
    assert bounds_of(resource) == days(21)


@pytest.mark.parametrize("mass", [True, False], ids=["fires-300-mg-refills", "unchanged-30-tablets-refills"])
def test_a_mass_with_refills_keeps_each_fills_days(client: TestClient, mass: bool) -> None:
    """300 mg (10 days) and 2 refills, 30 days: limited to 21, three fills of 21 tablets, 7 days
    each. Capped at the 60 tablets of 5 mg the mass makes, each fill was 32, nearly 11 days."""
    fill = {"quantity": mg(300) if mass else tablets(30), "numberOfRepeatsAllowed": 2}
    request = draft_of(OLDER_ADULT, tablets(1), 3, fill, liquid=False)
    resource = swap_of(client, request, START_DOSE[OLDER_ADULT])
    assert resource["dispenseRequest"] == dispensed(21, 7, refills=2)
    assert bounds_of(resource) == days(21)


@pytest.mark.parametrize("liquid", [True, False], ids=["fires-30-ml-first-fill", "unchanged-3-tablets-first"])
def test_a_first_fill_of_a_liquid_is_its_days_tablets(client: TestClient, liquid: bool) -> None:
    """300 mL, the first fill 30 mL, a day at 10 mL three times a day: 3 tablets first, 30 in all."""
    first = {"quantity": millilitres(30) if liquid else tablets(3)}
    fill = {"quantity": millilitres(300) if liquid else tablets(30), "initialFill": first}
    request = draft_of(OLDER_ADULT, millilitres(10) if liquid else tablets(1), 3, fill, liquid=liquid)
    resource = swap_of(client, request, START_DOSE[OLDER_ADULT])
    quantity = {"quantity": tablets(3)}
    assert resource["dispenseRequest"] == (
        dispensed(30, 10, fill=quantity) if liquid else {"quantity": tablets(30), "initialFill": quantity}
    )
    assert bounds_of(resource) == (days(21) if liquid else None)
