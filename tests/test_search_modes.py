"""What counts as a match against a search's ``Bundle.total`` when an entry says no ``search.mode``.

FHIR R4 (Bundle.total): the number of entries of mode ``match`` across all pages of the search,
not ``include`` or ``outcome`` entries. ``search.mode`` is optional, so an entry that says none is
read by its resource's type: a match when of the types searched, as on a page read alone (every
key's types, a resource sent under another key being read where it belongs). A prefetched page the
service read on from its ``fhirServer`` counted every such entry: the Medication the EHR put beside
an order made up for an order the total said was missing, and a history cut short passed for whole
with no notice. An entry saying no mode beside entries that say theirs counted as a match
whatever it held, where on a page of no modes it did not."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture, rule_ids
from tests.fhir_server import FhirTestServer

PHENELZINE = "cyclobenzaprine-maoi/fires-phenelzine-active.json"
LISINOPRIL = {
    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "code": "314076",
    "display": "Lisinopril 10 MG Oral Tablet",
}
IN_PART = "The patient's history was not read in full: checks may be incomplete"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def _order(id_: str, *, by_reference: bool = False) -> dict[str, Any]:
    """The phenelzine fixture's order made a lisinopril one, which no check reads: only the
    notice can say that an order left out may have been an MAO inhibitor."""
    order = copy.deepcopy(fixture(PHENELZINE)["prefetch"]["medications"]["entry"][0]["resource"])
    order["id"] = id_
    order["medicationCodeableConcept"] = {"coding": [LISINOPRIL], "text": LISINOPRIL["display"]}
    if by_reference:
        del order["medicationCodeableConcept"]
        order["medicationReference"] = {"reference": "Medication/med-ace"}
    return order


def _entry(resource: dict[str, Any], mode: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": f"http://ehr.example/fhir/{resource['resourceType']}/{resource['id']}"}
    entry["resource"] = resource
    if mode is not None:
        entry["search"] = {"mode": mode}
    return entry


def _page(order_mode: str | None, total: int) -> dict[str, Any]:
    """The EHR's page: one order naming its drug by reference and, beside it, that Medication with
    no mode said; ``total`` counts the search's matches."""
    medication = {"resourceType": "Medication", "id": "med-ace", "code": {"coding": [LISINOPRIL]}}
    entries = [_entry(_order("ace-1", by_reference=True), order_mode), _entry(medication, None)]
    return {"resourceType": "Bundle", "type": "searchset", "total": total, "entry": entries}


def _request(page: dict[str, Any], fhir_server: FhirTestServer | None) -> dict[str, Any]:
    """The phenelzine fixture's request with ``page`` as its medications; with a server, the page
    links to the server's next page, which holds one more order (no mode said, as many servers)."""
    request = fixture(PHENELZINE)
    request.pop("fhirServer")
    if fhir_server is not None:
        fhir_server.add(_order("ace-2"))
        request["fhirServer"] = fhir_server.base
        page["link"] = [{"relation": "next", "url": f"{fhir_server.base}/MedicationRequest?patient=harness-pt-1"}]
    request["prefetch"]["medications"] = page
    return request


def _partial(client: TestClient, request: dict[str, Any]) -> bool:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    partial = "partial-history" in rule_ids(body)
    if partial:
        assert body["cards"][-1]["summary"] == IN_PART
        assert "medication history" in body["cards"][-1]["detail"]
    return partial


@pytest.mark.parametrize(("total", "partial"), [(3, True), (2, False)])
@pytest.mark.parametrize("order_mode", [None, "match"])
def test_a_prefetched_page_read_on_counts_an_included_medication_saying_no_mode_as_no_match(
    client: TestClient, fhir_server: FhirTestServer, order_mode: str | None, total: int, partial: bool
) -> None:
    """Two orders read (one on the EHR's page, one on the server's): a total of 3 is a search cut
    short, 2 the whole of it, whether the EHR's order says its mode or not."""
    assert _partial(client, _request(_page(order_mode, total), fhir_server)) is partial
    assert len(fhir_server.searched("MedicationRequest")) == 1


@pytest.mark.parametrize(("total", "partial"), [(2, True), (1, False)])
def test_a_page_read_alone_counts_an_entry_saying_no_mode_by_its_type_beside_one_saying_match(
    client: TestClient, total: int, partial: bool
) -> None:
    """As on a page where no entry says a mode: the Medication is no match beside the order."""
    assert _partial(client, _request(_page("match", total), None)) is partial


def test_a_resource_sent_under_another_key_counts_on_a_page_read_on(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """A Condition sent among the orders is a match of the search sent (read where it belongs),
    as on a page read alone: the page and the server's order are the whole of a total of 3."""
    condition = {
        "resourceType": "Condition",
        "id": "htn-1",
        "subject": {"reference": "Patient/harness-pt-1"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]},
    }
    page = _page(None, 3)
    page["entry"][1] = _entry(condition, None)
    page["entry"][0]["resource"] = _order("ace-1")
    assert _partial(client, _request(page, fhir_server)) is False
