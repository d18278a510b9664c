"""The imaging orders that could not be had are said, as the other keys not read are.

QA round 2, F6: without the ``imaging`` key (an OperationOutcome sent, the key missing with no
fhirServer, a fetch that failed or ran out of time) the heat-and-exercise card went quiet (it
cannot tell whether physical therapy is ordered) and nothing on the screen said so: only a
failed ``patient`` key reached the partial-history notice. ``imaging`` is optional, so its
failure is no 412: the notice says it.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fetching_request, rule_ids
from tests.fhir_server import FhirTestServer

HEAT = "nonpharmacologic-first-line"
NOT_READ = "Not all of the patient's imaging orders could be read."
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
    assert HEAT in rule_ids({"cards": cards})
    assert "partial-history" not in rule_ids({"cards": cards})


@pytest.mark.parametrize("how", ["outcome-sent", "not-sent", "fetch-500", "fetch-late", "listed-type-refused"])
def test_imaging_orders_not_had_are_said_in_the_partial_history_notice(
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
    assert HEAT not in rule_ids({"cards": cards})  # it cannot tell whether therapy is ordered
    [notice] = [card for card in cards if card["source"]["topic"]["code"] == "partial-history"]
    assert notice["summary"] == "The patient's history was not read in full: checks may be incomplete"
    assert notice["detail"].startswith(NOT_READ)
    assert "harness-pt-1" not in notice["detail"] and "ServiceRequest" not in notice["detail"]
