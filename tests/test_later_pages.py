"""A search's later pages that cannot be read: the pages read stand, and the cards say the history
was read in part, as past the page limit. A page 2 answering 500 threw page 1 away: the call was a
412 saying the prefetched medications were "not in the request", and page 1's MAO inhibitor card
was lost (an adversarial review)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fetching_request, fixture, rule_ids
from tests.fhir_server import FhirTestServer

PHENELZINE = "cyclobenzaprine-maoi/fires-phenelzine-active.json"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def _history_notice(body: dict[str, Any]) -> dict[str, Any]:
    notice = body["cards"][-1]
    assert notice["source"]["topic"]["code"] == "partial-history"
    assert notice["summary"] == "The patient's history was not read in full: checks may be incomplete"
    return notice


@pytest.mark.parametrize("how", ["failing", "slow"])
def test_a_prefetched_page_whose_next_page_cannot_be_read_is_read_alone(
    client: TestClient, fhir_server: FhirTestServer, how: str
) -> None:
    request = fixture(PHENELZINE)
    request["fhirServer"] = fhir_server.base
    next_page = f"{fhir_server.base}/MedicationRequest?patient=harness-pt-1&_page=1"
    request["prefetch"]["medications"]["link"] = [{"relation": "next", "url": next_page}]
    if how == "failing":
        fhir_server.fail_later_pages = {"MedicationRequest"}
    else:
        fhir_server.delay, fhir_server.slow = 1.5, {"MedicationRequest"}  # the test settings' deadline is 1 s
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert len(fhir_server.searched("MedicationRequest")) == 1
    assert "cyclobenzaprine-maoi" in rule_ids(response.json())
    assert "medication history" in _history_notice(response.json())["detail"]


@pytest.mark.parametrize("how", ["failing", "slow"])
def test_a_fetched_search_whose_next_page_cannot_be_read_keeps_the_pages_read(
    client: TestClient, fhir_server: FhirTestServer, how: str
) -> None:
    """A second page still running at the deadline was a 412, as the failing one had been: page 1,
    read, and its MAO inhibitor card thrown away."""
    phenelzine = fixture(PHENELZINE)["prefetch"]["medications"]["entry"][0]["resource"]
    fhir_server.add(phenelzine, {**phenelzine, "id": "maoi-2"})
    fhir_server.page_sizes["MedicationRequest"] = 1
    if how == "failing":
        fhir_server.fail_later_pages = {"MedicationRequest"}
    else:  # the first page at once, the second past the test settings' deadline (1 s)
        fhir_server.delay, fhir_server.slow_later_pages = 1.5, {"MedicationRequest"}
    response = client.post(SELECT, json=fetching_request(fhir_server.base))
    assert response.status_code == 200, response.text
    assert len(fhir_server.searched("MedicationRequest")) == 2
    assert "cyclobenzaprine-maoi" in rule_ids(response.json())
    assert "medication history" in _history_notice(response.json())["detail"]


@pytest.mark.parametrize("relation", ["NEXT", "Next"])
def test_a_next_link_relation_is_read_whatever_its_case(
    client: TestClient, fhir_server: FhirTestServer, relation: str
) -> None:
    """Link relation names are case-insensitive (RFC 8288): a "NEXT" was passed over, its page
    not read and the history not said read in part."""
    request = fixture(PHENELZINE)
    phenelzine = request["prefetch"]["medications"]["entry"].pop()["resource"]
    fhir_server.add(phenelzine)
    request["fhirServer"] = fhir_server.base
    next_page = f"{fhir_server.base}/MedicationRequest?patient=harness-pt-1&_page=0"
    request["prefetch"]["medications"]["link"] = [{"relation": relation, "url": next_page}]
    response = client.post(SELECT, json=request)
    assert len(fhir_server.searched("MedicationRequest")) == 1
    assert "cyclobenzaprine-maoi" in rule_ids(response.json())
    assert "partial-history" not in rule_ids(response.json())


def test_a_key_whose_other_search_has_no_first_page_by_the_deadline_is_not_had(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """Of a server whose version is unknown the orders are asked as MedicationRequest and as
    MedicationOrder: one search's page 1 alone is not the history while the other's first page
    is still awaited (it may hold the orders), so the key stays not had, as a first page late."""
    phenelzine = fixture(PHENELZINE)["prefetch"]["medications"]["entry"][0]["resource"]
    fhir_server.add(phenelzine, {**phenelzine, "id": "maoi-2"})
    fhir_server.metadata = False
    fhir_server.page_sizes["MedicationRequest"] = 1
    fhir_server.delay, fhir_server.slow = 1.5, {"MedicationOrder"}
    fhir_server.slow_later_pages = {"MedicationRequest"}
    response = client.post(SELECT, json=fetching_request(fhir_server.base))
    assert response.status_code == 412, response.text
    assert "prefetch.medications" in response.text
    assert len(fhir_server.searched("MedicationRequest")) == 2


@pytest.mark.parametrize(("how", "logged"), [("failing", "HTTP 500"), ("slow", "not done in 1 s")])
def test_a_first_page_failed_or_late_is_the_same_412_and_the_log_tells_which(
    client: TestClient, fhir_server: FhirTestServer, caplog: pytest.LogCaptureFixture, how: str, logged: str
) -> None:
    """docs/integrating.md, Errors: the 412 reads the same for a server error and a first page not
    in by the deadline; only the service log tells them apart (an integrator read the 412 as
    telling them apart, and got the same words for both)."""
    if how == "failing":
        fhir_server.fail_for = {"MedicationRequest"}
    else:
        fhir_server.delay, fhir_server.slow = 1.5, {"MedicationRequest"}  # the test settings' deadline is 1 s
    caplog.set_level(logging.WARNING, logger="cds_service.pipeline.prefetch")
    response = client.post(SELECT, json=fetching_request(fhir_server.base))
    assert response.status_code == 412, response.text
    assert response.json()["issue"][0]["diagnostics"] == (
        "prefetch.medications: not in the request, and fetching it from fhirServer failed (the service log says why)"
    )
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("prefetch medications: fetching")]
    assert len(failed) == 1 and failed[0].endswith(logged), failed
