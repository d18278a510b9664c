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


def test_an_instruction_whose_words_alone_say_how_often_keeps_them(client: TestClient) -> None:
    """Dropped, a dosage with no coded frequency would no longer say how often to take it."""
    request = worded(DURATION)
    [dosage] = the_draft(request)["dosageInstruction"]
    dosage["timing"]["repeat"].pop("frequency", None)
    dosage["timing"]["repeat"].pop("period", None)
    dosage["timing"]["repeat"].pop("periodUnit", None)
    dosage.pop("timing")
    offered = updates(client, request)
    assert offered, "no update offered"
    for label, resource in offered.items():
        assert "text" not in resource, label
        [kept] = resource["dosageInstruction"]
        assert (kept["text"], kept["patientInstruction"]) == (TEXT, FOR_THE_PATIENT), label


def test_the_21_day_update_first_fills_no_more_than_it_orders(client: TestClient) -> None:
    request = fixture(DURATION)
    dispense = the_draft(request)["dispenseRequest"]
    tablets = {"value": 30, "unit": "tablet", "system": "http://unitsofmeasure.org", "code": "{tbl}"}
    dispense["quantity"] = tablets
    month = {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}
    dispense["initialFill"] = {"quantity": tablets, "duration": month}
    [limited] = [r for label, r in updates(client, request).items() if "21 days" in label]
    limited_dispense = limited["dispenseRequest"]
    fill = limited_dispense["initialFill"]
    assert fill["quantity"]["value"] <= limited_dispense["quantity"]["value"]
    assert fill["duration"]["value"] == 21 and fill["duration"]["code"] == "d"
    assert limited_dispense["quantity"] == {**tablets, "value": 21}  # in the draft's unit, not the dose's {pill}
    assert fill["quantity"] == limited_dispense["quantity"]
