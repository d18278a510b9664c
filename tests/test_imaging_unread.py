"""The service orders (the ``imaging`` key) that could not be had are said by the cards that read them.

QA round 2, F6: without the ``imaging`` key (an OperationOutcome sent, the key missing with no
fhirServer, a fetch that failed or ran out of time) the heat-and-exercise card went quiet (it
cannot tell whether physical therapy is ordered) and nothing on the screen said so. Said first
in the partial-history notice, then (the clinical review: a site that sends no imaging had the
warning on every call, ciprofloxacin's too) by the heat card itself, shown with what it could
not check, as the MRI card says "could not be checked". ``imaging`` is optional: no 412.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fetching_request, rule_ids
from tests.fhir_server import FhirTestServer

HEAT = "nonpharmacologic-first-line"
UNCHECKED = "Whether physical therapy is ordered could not be checked: the service orders were not available."
EMPTY = {"resourceType": "Bundle", "type": "searchset", "entry": []}
ADULT = {"resourceType": "Patient", "id": "harness-pt-1", "birthDate": "1979-01-20"}
FAILED = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}


def _request(server: str | None, **prefetch: Any) -> dict[str, Any]:
    """The sandbox's cyclobenzaprine order for low back pain, a 47-year-old, no history."""
    request = fetching_request(server or "http://unused")
    request["prefetch"] = {"patient": ADULT, "conditions": EMPTY, "medications": EMPTY, **prefetch}
    if server is None:
        del request["fhirServer"]
    return request


def _cards(client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return response.json()["cards"]


def test_with_the_imaging_orders_read_the_heat_card_is_shown_and_no_notice(client: TestClient) -> None:
    cards = _cards(client, _request(None, imaging=EMPTY))
    [heat] = [card for card in cards if card["source"]["topic"]["code"] == HEAT]
    assert heat["detail"].endswith("No current physical therapy order was found for this patient.")
    assert "partial-history" not in rule_ids({"cards": cards})


def test_imaging_orders_not_had_beside_an_order_no_card_reads_them_for_say_nothing(client: TestClient) -> None:
    """A ciprofloxacin order at a site that sends no imaging: nothing that reads imaging ran, and
    no notice warns of it on every call (the clinical review)."""
    request = _request(None)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {"text": "ciprofloxacin 500 MG Oral Tablet"}
    assert _cards(client, request) == []


@pytest.mark.parametrize("how", ["outcome-sent", "not-sent", "fetch-500", "fetch-late", "listed-type-refused"])
def test_imaging_orders_not_had_are_said_by_the_heat_card_and_no_notice(
    client: TestClient, fhir_server: FhirTestServer, how: str
) -> None:
    if how == "outcome-sent":
        request = _request(None, imaging=FAILED)
    elif how == "not-sent":
        request = _request(None)
    else:
        request = _request(fhir_server.base)  # only imaging is fetched
        if how == "fetch-500":
            fhir_server.fail_for = {"ServiceRequest"}
        elif how == "fetch-late":
            fhir_server.delay, fhir_server.slow = 1.5, {"ServiceRequest"}  # the tests' deadline is 1 s
        else:  # the server lists ServiceRequest, and refuses its search as of an unknown type
            fhir_server.canned["ServiceRequest"] = fhir_server.unknown_type("ServiceRequest")
    cards = _cards(client, request)
    [heat] = [card for card in cards if card["source"]["topic"]["code"] == HEAT]
    assert heat["detail"].endswith(UNCHECKED)
    assert "partial-history" not in rule_ids({"cards": cards})
