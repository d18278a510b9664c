"""``cds_fhir_fetch_errors_total{key}`` counts a prefetch key once a call whatever went wrong with
it (docs/operations.md): a key whose later page was cut off by the deadline, and whose orders'
Medications were then not read either, is one key the call could not read, not two. It was
counted twice, and a dashboard's errors a call doubled with every slow server."""

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fetching_request, fixture, rule_ids
from tests.fhir_server import FhirTestServer

PHENELZINE = "cyclobenzaprine-maoi/fires-phenelzine-active.json"
COUNTED = "cds_fhir_fetch_errors_total"


def _counted(client: TestClient, key: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'{COUNTED}{{key="{key}"}} '):
            return float(line.rpartition(" ")[2])
    return 0.0


def _orders_by_reference(fhir_server: FhirTestServer) -> None:
    """Two orders, a page each, the first naming its drug only by ``Medication/x``, which the
    server does not ``_include``: page 1 read, the Medication is then asked for by id."""
    phenelzine = fixture(PHENELZINE)["prefetch"]["medications"]["entry"][0]["resource"]
    by_reference = copy.deepcopy(phenelzine)
    del by_reference["medicationCodeableConcept"]
    by_reference["medicationReference"] = {"reference": "Medication/unnamed-1"}
    fhir_server.add(by_reference, {**phenelzine, "id": "maoi-2"})
    fhir_server.page_sizes["MedicationRequest"] = 1
    fhir_server.includes = False
    fhir_server.fail_for.add("Medication")


@pytest.mark.parametrize("sent", [False, True], ids=["fetched", "prefetched-page"])
def test_a_key_cut_off_whose_medications_then_fail_is_counted_once(
    client: TestClient, fhir_server: FhirTestServer, sent: bool
) -> None:
    """Its page 2 past the deadline (1 s in the test settings), its Medications not read after."""
    _orders_by_reference(fhir_server)
    fhir_server.delay, fhir_server.slow_later_pages = 1.5, {"MedicationRequest"}
    request = fetching_request(fhir_server.base)
    if sent:  # the EHR sent page 1 and links to the server's page 2
        page_1 = fhir_server.handle("/fhir/MedicationRequest?patient=harness-pt-1", {})[1]
        request["prefetch"] = {"medications": page_1}
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert rule_ids(response.json())[-1] == "partial-history"
    assert _counted(client, "medications") == 1


def test_each_key_that_fails_is_counted_once_a_call(client: TestClient, fhir_server: FhirTestServer) -> None:
    """Two calls, each failing the same key: two."""
    _orders_by_reference(fhir_server)
    fhir_server.delay, fhir_server.slow_later_pages = 1.5, {"MedicationRequest"}
    for _ in range(2):
        assert client.post(SELECT, json=fetching_request(fhir_server.base)).status_code == 200
    assert _counted(client, "medications") == 2


def test_a_key_whose_later_page_fails_is_counted(client: TestClient, fhir_server: FhirTestServer) -> None:
    """As one the deadline cuts off on a later page: its first page read, the rest not (a server
    failing its next pages showed on no dashboard)."""
    _orders_by_reference(fhir_server)
    fhir_server.fail_for.clear()
    fhir_server.fail_later_pages.add("MedicationRequest")
    response = client.post(SELECT, json=fetching_request(fhir_server.base))
    assert response.status_code == 200, response.text
    assert rule_ids(response.json())[-1] == "partial-history"
    assert _counted(client, "medications") == 1
