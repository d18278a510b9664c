"""Doses and quantities without a unit, a taper's highest dose, and a taper whose dated steps say
fewer days than its stepped ones: read off the duration and older-adult cards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TODAY, cards_for
from tests.facts.conftest import days, duration_card, hook, planned, post, quantity, step


@pytest.mark.parametrize("blank", [{}, {"unit": ""}], ids=["no-unit", "empty-unit"])
def test_a_dose_without_a_unit_is_a_count_of_units(client: TestClient, blank: dict[str, Any]) -> None:
    """Two (of nothing said) three times a day are two tablets: 132 tablets last 22 days (read as
    no dose at all, the duration was unknown and only the info card came)."""
    dosage = step(3, units=2)
    dosage["doseAndRate"][0]["doseQuantity"] = {"value": 2, **blank}
    assert planned(client, hook(dosage=[dosage], dispense=quantity(132))) == "22 days planned"


@pytest.mark.parametrize("blank", [{}, {"unit": ""}], ids=["no-unit", "empty-unit"])
def test_a_dispensed_quantity_without_a_unit_is_a_count_of_units(client: TestClient, blank: dict[str, Any]) -> None:
    """66 (of nothing said) at one tablet three times a day last 22 days."""
    dispense = {"quantity": {"value": 66, **blank}}
    assert planned(client, hook(dosage=[step(3)], dispense=dispense)) == "22 days planned"


@pytest.mark.parametrize("halves", [(0.5, 1), (1, 0.5)], ids=["rising", "falling"])
def test_a_taper_is_dosed_by_its_highest_step(client: TestClient, halves: tuple[float, float]) -> None:
    """Half a 10 mg tablet and a whole one, in either order: up to 10 mg per dose for a 76-year-old, above
    the 5 mg start (a warning), never the first or the lowest step's 5 mg (the low-dose info card)."""
    taper = [step(3, units=units, duration=days(7)) for units in halves]
    request = hook(dosage=taper, dispense={})
    request["prefetch"]["patient"]["birthDate"] = f"{TODAY.year - 76}-01-01"
    [card] = cards_for(post(client, request), "cyclobenzaprine-older-adult")
    assert card["indicator"] == "warning"
    assert "(up to 10 mg per dose ordered)" in card["summary"]


def test_dated_steps_shorter_than_the_stepped_ones_leave_the_longer_reading(client: TestClient) -> None:
    """A dated first step of 15 days, then steps of 11 and 11 days: the steps say 22 days, more
    than the dates' 15, and the longer reading counts (read by the dates, no card came)."""
    start = TODAY + timedelta(days=10)
    dated = step(3, bounds=(start.isoformat(), (start + timedelta(days=14)).isoformat()))
    request = hook(dosage=[dated, step(2, duration=days(11)), step(1, duration=days(11))], dispense={})
    assert planned(client, request) == "22 days planned"
    card = duration_card(client, request)
    assert card is not None and "a duration of 22 days in 2 steps" in card["detail"]


@pytest.mark.parametrize(
    ("mg", "shown"),
    [
        (0.000001, "0.000001 mg"),
        (0.0125, "0.0125 mg"),
        (0.01234, "0.0123 mg"),
        (2.5, "2.5 mg"),
        (7.5, "7.5 mg"),
        (4.9999, "4.9999 mg"),  # "4.99": rounded away from 5, a dose lower than the one ordered
        (1e-7, "under 0.000001 mg"),  # "1e-07 mg"
        (5e-324, "under 0.000001 mg"),  # "4.94e-324 mg"
    ],
)
def test_a_dose_below_a_tenth_of_a_milligram_is_shown_as_itself(client: TestClient, mg: float, shown: str) -> None:
    """To three significant digits: a dose of a millionth of a milligram read "0.01 mg", a hundredth
    and more than it was (make fuzz); to two, 0.0125 mg read "0.013 mg", a dose rounded up (the
    clinical review); below a millionth, no scientific notation (an adversarial review)."""
    request = hook(dosage=[step(1, units=mg, unit="mg", duration=days(30))], dispense={})
    card = duration_card(client, request)
    assert card is not None
    assert f"(keeps {shown})" in card["suggestions"][0]["label"]
