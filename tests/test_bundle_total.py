"""A searchset whose ``total`` counts more matches than it holds, with no ``next`` link to read
them from, is a history read in part: ``total: 2`` over one order was read as the patient's
whole history, and an MAO inhibitor on the page left out gave no card and no word (an
adversarial review). Only matches count against it: an ``_include``d Medication or the search's
own OperationOutcome is no match. A ``total`` that is no count is refused as the Bundle's other
fields are: a 400 naming it for a key the service needs, read as not sent for an optional one,
a failed fetch from a server."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fetching_request, fixture, rule_ids
from tests.fhir_server import FhirTestServer

PHENELZINE = "cyclobenzaprine-maoi/fires-phenelzine-active.json"
IN_PART = "The patient's history was not read in full: checks may be incomplete"
LISINOPRIL = {
    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "code": "314076",
    "display": "Lisinopril 10 MG Oral Tablet",
}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def _lisinopril_order() -> dict[str, Any]:
    """The phenelzine fixture's order made a drug no check reads: the page the EHR sent holds
    nothing to warn of, and only the notice can say an MAO inhibitor may be on the page left out."""
    order = copy.deepcopy(fixture(PHENELZINE)["prefetch"]["medications"]["entry"][0])
    order["resource"]["id"] = "ace-1"
    order["resource"]["medicationCodeableConcept"] = {"coding": [LISINOPRIL], "text": LISINOPRIL["display"]}
    return order


def _prefetched(total: Any, *entries: dict[str, Any]) -> dict[str, Any]:
    """The phenelzine fixture's request with its medications Bundle holding ``entries`` and
    saying ``total``, and no fhirServer to read more from."""
    request = fixture(PHENELZINE)
    request.pop("fhirServer")
    request["prefetch"]["medications"].update(total=total, entry=list(entries))
    return request


def _notice(body: dict[str, Any]) -> dict[str, Any]:
    notice = body["cards"][-1]
    assert notice["source"]["topic"]["code"] == "partial-history", body
    assert notice["summary"] == IN_PART
    assert "medication history" in notice["detail"]
    return notice


def _medication(order: dict[str, Any], mode: str | None) -> dict[str, Any]:
    """A Medication the order names by reference, as ``_include`` adds it beside the matches."""
    order["resource"].pop("medicationCodeableConcept")
    order["resource"]["medicationReference"] = {"reference": "Medication/med-ace"}
    medication = {"resourceType": "Medication", "id": "med-ace", "code": {"coding": [LISINOPRIL]}}
    entry: dict[str, Any] = {"fullUrl": "http://ehr.example/fhir/Medication/med-ace", "resource": medication}
    if mode is not None:
        entry["search"] = {"mode": mode}
    return entry


@pytest.mark.parametrize("total", [2, 2.0, "2", 40])
def test_a_prefetch_holding_fewer_matches_than_its_total_says_the_history_is_partial(
    client: TestClient, caplog: pytest.LogCaptureFixture, total: Any
) -> None:
    response = client.post(SELECT, json=_prefetched(total, _lisinopril_order()))
    assert response.status_code == 200, response.text
    _notice(response.json())
    assert "cyclobenzaprine-maoi" not in rule_ids(response.json())
    said = "prefetch medications holds fewer matches than its Bundle.total counts, and no next link: the rest not read"
    assert said in caplog.text
    assert "harness" not in caplog.text and "ace-1" not in caplog.text


def test_an_empty_prefetch_whose_total_counts_forty_is_partial(client: TestClient) -> None:
    response = client.post(SELECT, json=_prefetched(40))
    assert response.status_code == 200, response.text
    _notice(response.json())


@pytest.mark.parametrize("mode", ["match", None])
def test_a_prefetch_holding_as_many_matches_as_its_total_is_whole(client: TestClient, mode: str | None) -> None:
    order = _lisinopril_order()
    if mode is not None:
        order["search"] = {"mode": mode}
    body = client.post(SELECT, json=_prefetched(1, order)).json()
    assert "partial-history" not in rule_ids(body)


def test_a_total_below_the_entries_is_not_an_error(client: TestClient) -> None:
    """A server counting otherwise, or a record grown between pages: the entries are read."""
    body = client.post(SELECT, json=_prefetched(0, _lisinopril_order())).json()
    assert "partial-history" not in rule_ids(body)


@pytest.mark.parametrize(("total", "partial"), [(1, False), (2, True)])
@pytest.mark.parametrize("mode", ["include", "outcome"])
def test_entries_beside_the_matches_do_not_count_against_the_total(
    client: TestClient, total: int, partial: bool, mode: str
) -> None:
    """One order and, beside it, the Medication it names (``_include``) or the search's own
    OperationOutcome (a warning: it says no failure): two entries, one match."""
    order = _lisinopril_order()
    if mode == "include":
        beside = _medication(order, "include")
    else:
        outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "informational"}]}
        beside = {"resource": outcome, "search": {"mode": "outcome"}}
    body = client.post(SELECT, json=_prefetched(total, order, beside)).json()
    if partial:
        _notice(body)
    else:
        assert "partial-history" not in rule_ids(body)


@pytest.mark.parametrize(("total", "partial"), [(1, False), (2, True)])
def test_an_included_medication_whose_mode_is_unsaid_is_no_match(client: TestClient, total: int, partial: bool) -> None:
    """``search.mode`` is optional: with none said, the key's own types are its matches, so a
    Medication beside one order no longer made up for the order ``total: 2`` said was missing."""
    order = _lisinopril_order()
    body = client.post(SELECT, json=_prefetched(total, order, _medication(order, None))).json()
    if partial:
        _notice(body)
    else:
        assert "partial-history" not in rule_ids(body)


@pytest.mark.parametrize("total", ["abc", -1, 1.5, True, [2], {"value": 2}])
def test_a_needed_keys_total_that_is_no_count_is_400_naming_it(client: TestClient, total: Any) -> None:
    response = client.post(SELECT, json=_prefetched(total, _lisinopril_order()))
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["prefetch.medications.total"]
    assert issue["diagnostics"].startswith("prefetch.medications.total: must be the number of the search's matches")


def test_an_optional_keys_total_that_is_no_count_is_read_as_not_sent(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Prior imaging only sharpens a card: not the reason to lose the MAO inhibitor's critical card."""
    request = fixture(PHENELZINE)
    request.pop("fhirServer")
    request["prefetch"]["imaging"]["total"] = "abc"
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert "cyclobenzaprine-maoi" in rule_ids(response.json())
    assert "prefetch.imaging.total: must be the number of the search's matches" in caplog.text


def test_a_fetched_search_holding_fewer_matches_than_its_total_is_partial(
    client: TestClient, fhir_server: FhirTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that cuts its answer short and says so only in ``total``, no ``next`` link."""
    fhir_server.add(_lisinopril_order()["resource"])
    fhir_server.totals["MedicationRequest"] = 2
    response = client.post(SELECT, json=fetching_request(fhir_server.base))
    assert response.status_code == 200, response.text
    _notice(response.json())
    assert "a fhirServer search holds fewer matches than its Bundle.total counts: the rest not read" in caplog.text


@pytest.mark.parametrize(("total", "partial"), [(3, True), (2, False)])
def test_a_fetched_searchs_matches_are_counted_over_every_page(
    client: TestClient, fhir_server: FhirTestServer, total: int, partial: bool
) -> None:
    """Two pages of one order each, read to the last: a total of 2 is the whole search, 3 is not."""
    order = _lisinopril_order()["resource"]
    fhir_server.add(order, {**order, "id": "ace-2"})
    fhir_server.page_sizes["MedicationRequest"] = 1
    fhir_server.totals["MedicationRequest"] = total
    body = client.post(SELECT, json=fetching_request(fhir_server.base)).json()
    assert len(fhir_server.searched("MedicationRequest")) == 2
    if partial:
        _notice(body)
    else:
        assert "partial-history" not in rule_ids(body)


def test_a_prefetched_page_and_the_pages_it_links_to_are_counted_together(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """The EHR's page holds one of two orders and links to the server's for the other: whole."""
    fhir_server.add(_lisinopril_order()["resource"])
    request = fixture(PHENELZINE)
    request["fhirServer"] = fhir_server.base
    request["prefetch"]["medications"]["total"] = 2
    next_page = f"{fhir_server.base}/MedicationRequest?patient=harness-pt-1&_page=0"
    request["prefetch"]["medications"]["link"] = [{"relation": "next", "url": next_page}]
    body = client.post(SELECT, json=request).json()
    assert len(fhir_server.searched("MedicationRequest")) == 1
    assert "cyclobenzaprine-maoi" in rule_ids(body)
    assert "partial-history" not in rule_ids(body)


def test_a_fetched_search_whose_total_is_no_count_is_a_failed_fetch(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    fhir_server.totals["MedicationRequest"] = "abc"
    response = client.post(SELECT, json=fetching_request(fhir_server.base))
    assert response.status_code == 412, response.text
    assert response.json()["issue"][0]["expression"] == ["prefetch.medications"]
