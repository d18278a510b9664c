"""A dose swap of a taper dispenses what its steps take at the new dose, each step for its own
days: counted at the highest step, 40 tablets of two three times a day for 5 days then one a day
for 10 became 20 one-tablet doses, and the taper at one a dose takes 25 (it ran out on day 10)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture

UCUM = "http://unitsofmeasure.org"
TAPER = "cyclobenzaprine-older-adult/fires-swap-taper-counted-step-by-step.json"
START_DOSE_RULES = ("cyclobenzaprine-older-adult", "cyclobenzaprine-hepatic-impairment")


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def tablets(value: float, *, mg: bool = False) -> dict[str, Any]:
    unit, code = ("mg", "mg") if mg else ("tablet", "{tablet}")
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def step(times: int, dose: dict[str, Any], *, days: int | None = None, sequence: int | None = None) -> dict[str, Any]:
    repeat: dict[str, Any] = {"frequency": times, "period": 1, "periodUnit": "d"}
    if days is not None:
        repeat["boundsDuration"] = {"value": days, "unit": "days", "system": UCUM, "code": "d"}
    dosage: dict[str, Any] = {"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": dose}]}
    return dosage if sequence is None else {"sequence": sequence, **dosage}


def dated(times: int, units: float, start: str, end: str) -> dict[str, Any]:
    dosage = step(times, tablets(units))
    dosage["timing"]["repeat"]["boundsPeriod"] = {"start": start, "end": end}
    return dosage


def dispense(count: int, supply_days: int | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"quantity": {"value": count, "unit": "tablet"}}
    if supply_days is not None:
        request["expectedSupplyDuration"] = {"value": supply_days, "unit": "days", "system": UCUM, "code": "d"}
    return request


def swapped_count(client: TestClient, name: str, dosages: list[dict[str, Any]] | None, fill: dict[str, Any]) -> float:
    """The dispensed count of the dose change the start-dose card for ``name``'s draft offers (no
    course here is over 21 days: no duration card, no limit composed into it)."""
    request = fixture(name)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    if dosages is not None:
        draft["dosageInstruction"] = copy.deepcopy(dosages)
    draft["dispenseRequest"] = fill
    body = answered(client, request)
    assert not cards_for(body, "cyclobenzaprine-duration")
    return float(swapped_dispense(body)["quantity"]["value"])


def swapped_dispense(body: dict[str, Any]) -> dict[str, Any]:
    """The dispense request of the one dose change the start-dose cards offer."""
    [dispensed] = [
        action["resource"]["dispenseRequest"]
        for rule in START_DOSE_RULES
        for card in cards_for(body, rule)
        for suggestion in card.get("suggestions", ())
        for action in suggestion["actions"]
        if action["type"] == "update"
    ]
    return dict(dispensed)


TWO_THEN_ONE = [step(3, tablets(2), days=5, sequence=1), step(1, tablets(1), days=10, sequence=2)]


@pytest.mark.parametrize(
    ("dosages", "fill", "expected"),
    [
        (None, dispense(40), 25),  # the fixture: 15 + 10, where 20 ran out on day 10
        (TWO_THEN_ONE, dispense(40, 15), 25),  # a supply for the whole taper: the same
        (TWO_THEN_ONE, dispense(40, 7), 17),  # a fill of its first 7 days: 5 × 3 + 2 × 1, not 20
        (TWO_THEN_ONE, dispense(20), 10),  # a count for part of it: the 3⅓ days it lasted, at 3 a day
        (TWO_THEN_ONE, dispense(60), 25),  # a count for more than the taper: the taper
        # Four a day capped at three: 5 × 3 + 10, where the highest step's 3 in 4 gave 23.
        ([step(4, tablets(1), days=5, sequence=1), step(1, tablets(1), days=10, sequence=2)], dispense(30), 25),
        # Dated steps one after the other, no sequence: by their dates.
        ([dated(3, 2, "2026-11-21", "2026-11-25"), dated(1, 1, "2026-11-26", "2026-12-05")], dispense(40), 25),
        # The first step ends on the day the next begins (EHRs write a taper so): that day is the
        # next step's, counted once: 4 days at three and 11 at one, where the 25th in both gave 26.
        ([dated(3, 2, "2026-11-21", "2026-11-25"), dated(1, 1, "2026-11-25", "2026-12-05")], dispense(40), 23),
        # Dated on the same days, no sequence: they run together (one and two tablets once a day,
        # now one and one), 20 for the 10-day fill, where the highest step's 1 in 2 gave 15.
        ([dated(1, 1, "2026-11-21", "2026-11-30"), dated(1, 2, "2026-11-21", "2026-11-30")], dispense(30, 10), 20),
        # A last step of no stated length takes what the count leaves: 10 days of one a day.
        ([step(3, tablets(2), days=5, sequence=1), step(1, tablets(1), sequence=2)], dispense(40), 25),
    ],
    ids=[
        "fixture-no-supply",
        "supply-whole-taper",
        "supply-first-7-days",
        "count-for-part",
        "count-for-more",
        "four-a-day-capped",
        "dated-in-turn",
        "dated-sharing-a-day",
        "dated-together",
        "last-step-open",
    ],
)
def test_the_5_mg_swap_counts_a_taper_step_by_step(
    client: TestClient, dosages: list[dict[str, Any]] | None, fill: dict[str, Any], expected: int
) -> None:
    assert swapped_count(client, TAPER, dosages, fill) == expected


def test_the_hepatic_swap_counts_a_taper_step_by_step(client: TestClient) -> None:
    """The hepatic-impairment card's swap is the same change, here of doses written in mg: 20 mg
    three times a day for 5 days, then 10 mg once a day for 10, 40 of the 10 mg tablet: 25 of the
    5 mg tablet, where the highest step's 3 in 6 gave 20."""
    name = "cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-10mg.json"
    dosages = [step(3, tablets(20, mg=True), days=5, sequence=1), step(1, tablets(10, mg=True), days=10, sequence=2)]
    assert swapped_count(client, name, dosages, dispense(40)) == 25


def test_the_sublingual_dose_change_counts_a_taper_step_by_step(client: TestClient) -> None:
    """Tonmya two tablets once a day for 7 days, then one for 7 (21 tablets), at 70 made one tablet
    once a day: 14, where the highest step's one in two gave 11 (out on day 11)."""
    name = "cyclobenzaprine-older-adult/fires-sublingual-5.6mg-age-70.json"
    dosages = [step(1, tablets(2), days=7, sequence=1), step(1, tablets(1), days=7, sequence=2)]
    assert swapped_count(client, name, dosages, dispense(21)) == 14
