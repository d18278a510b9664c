"""An update changes a draft's coded dose, product or days; the draft's own words for the order
(a dosage's ``text`` and ``patientInstruction``, the resource's narrative) and its first fill
described the order before the change. Accepted as they were, a pharmacy label would say "10 mg
for 30 days" of a 5 mg order for 21 days (a conformance review)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture

HEPATIC = "cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-10mg.json"
DURATION = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
TEXT = "Take 1 tablet (10 mg) by mouth once daily for 30 days"
FOR_THE_PATIENT = "Take one 10 mg tablet daily for 30 days"
NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">10 mg daily, 30 days</div>'}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def the_draft(request: dict[str, Any]) -> dict[str, Any]:
    return request["context"]["draftOrders"]["entry"][0]["resource"]


def updates(client: TestClient, request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each update the cards offer, by its suggestion's label."""
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return {
        suggestion["label"]: action["resource"]
        for card in response.json()["cards"]
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
        if action["type"] == "update"
    }


def worded(name: str) -> dict[str, Any]:
    request = fixture(name)
    draft = the_draft(request)
    draft["text"] = NARRATIVE
    draft["dosageInstruction"][0].update(text=TEXT, patientInstruction=FOR_THE_PATIENT)
    return request


def cards_of(client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return response.json()["cards"]


@pytest.mark.parametrize("name", [HEPATIC, DURATION])
def test_an_update_drops_the_drafts_words_for_the_order_where_its_codes_say_it_all(
    client: TestClient, name: str
) -> None:
    offered = updates(client, worded(name))
    assert offered, "no update offered"
    for label, resource in offered.items():
        assert "text" not in resource, label
        for dosage in resource["dosageInstruction"]:
            assert not {"text", "patientInstruction"} & dosage.keys(), label
            assert dosage["timing"]["repeat"]["frequency"] and dosage["doseAndRate"], label
    for card in cards_of(client, worded(name)):
        if card.get("suggestions"):  # the clinician is told, on the card they accept from
            assert card["detail"].count("leaves out the order's sig text and patient instructions") == 1


def test_a_card_updating_a_draft_with_no_words_says_nothing_of_them(client: TestClient) -> None:
    shown = cards_of(client, fixture(HEPATIC))
    assert updates(client, fixture(HEPATIC)), "no update offered"
    assert all("leaves out" not in card["detail"] for card in shown)


@pytest.mark.parametrize("dropped", ["timing", "doseAndRate"])
def test_a_draft_whose_words_alone_give_its_dose_or_frequency_is_offered_no_update(
    client: TestClient, dropped: str
) -> None:
    """Kept, its words ("Take 1 tablet (10 mg) … for 30 days") would stand beside a 5 mg, 21-day
    order, and a pharmacist reading "10 mg" on a 5 mg tablet dispenses two (a pharmacist's review)."""
    request = worded(HEPATIC)
    [dosage] = the_draft(request)["dosageInstruction"]
    del dosage[dropped]
    shown = cards_of(client, request)
    assert updates(client, request) == {}
    assert any(card.get("suggestions") for card in cards_of(client, fixture(HEPATIC)))
    said = [
        card for card in shown if "gives its dose, how often or that it is as needed only in words" in card["detail"]
    ]
    assert said and all("edit the order itself before signing" in card["detail"] for card in said)


def limited_fill(client: TestClient, fill: dict[str, Any]) -> dict[str, Any]:
    """The 21-day update's dispense of the sandbox's 30-day order of 30 tablets, first filled ``fill``."""
    request = fixture(DURATION)
    dispense = the_draft(request)["dispenseRequest"]
    dispense["quantity"] = TABLETS
    dispense["initialFill"] = fill
    [limited] = [r for label, r in updates(client, request).items() if "21 days" in label]
    dispense = limited["dispenseRequest"]
    assert dispense["quantity"] == {**TABLETS, "value": 21}  # in the draft's unit, not the dose's {pill}
    return dispense


TABLETS = {"value": 30, "unit": "tablet", "system": "http://unitsofmeasure.org", "code": "{tbl}"}
MONTH = {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}


def test_the_21_day_update_first_fills_no_more_than_it_orders(client: TestClient) -> None:
    dispense = limited_fill(client, {"quantity": TABLETS, "duration": MONTH})
    assert dispense["initialFill"] == {"quantity": dispense["quantity"], "duration": {**MONTH, "value": 21}}


def test_a_trial_first_fill_counted_in_another_spelling_of_tablets_is_kept(client: TestClient) -> None:
    """ "7 TAB" against "30 {tbl}" was read as another unit, and the course's 21 copied in: the
    trial fill, raised threefold."""
    week = {**MONTH, "value": 7}
    trial = {"value": 7, "unit": "TAB"}
    assert limited_fill(client, {"quantity": trial, "duration": week})["initialFill"] == {
        "quantity": trial,
        "duration": week,
    }


def test_a_first_fill_that_cannot_be_compared_loses_its_quantity_never_gains_one(client: TestClient) -> None:
    fill = limited_fill(client, {"quantity": {"value": 5, "unit": "mL"}, "duration": MONTH})["initialFill"]
    assert fill == {"duration": {**MONTH, "value": 21}}


def test_a_trial_first_fill_in_tablets_of_a_course_counted_in_pills_is_kept(client: TestClient) -> None:
    """No dispensed quantity: the course is counted in the dose's {pill}. "7 tablet" was another
    unit to it, and the fill went, leaving ``initialFill: {}`` (FHIR has no empty objects)."""
    request = fixture(DURATION)
    trial = {"value": 7, "unit": "tablet"}
    the_draft(request)["dispenseRequest"]["initialFill"] = {"quantity": trial}
    [limited] = [r for label, r in updates(client, request).items() if "21 days" in label]
    assert limited["dispenseRequest"]["initialFill"] == {"quantity": trial}


def test_a_first_fill_left_with_nothing_goes(client: TestClient) -> None:
    request = fixture(DURATION)
    the_draft(request)["dispenseRequest"]["initialFill"] = {"quantity": {"value": 5, "unit": "mL"}}
    [limited] = [r for label, r in updates(client, request).items() if "21 days" in label]
    assert "initialFill" not in limited["dispenseRequest"]


@pytest.mark.parametrize(
    ("repeat", "offered"),
    [
        ({"frequency": 3}, False),  # three times in no period: how often is in the words alone
        ({"when": ["HS"]}, True),  # at bedtime: once a day, as the facts read it
        ({"timeOfDay": ["08:00:00", "20:00:00"]}, True),
    ],
)
def test_how_often_is_coded_as_the_facts_read_it(client: TestClient, repeat: dict[str, Any], offered: bool) -> None:
    request = worded(HEPATIC)
    the_draft(request)["dosageInstruction"][0]["timing"] = {"repeat": repeat}
    found = updates(client, request)
    assert bool(found) is offered
    for resource in found.values():
        assert not {"text", "patientInstruction"} & resource["dosageInstruction"][0].keys()
