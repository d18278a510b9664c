"""Fetching from DSTU2 and STU3 servers: the sandbox's default DSTU2 path gets the R4 path's cards.

The CDS Hooks sandbox's default FHIR server is DSTU2: its Rx View sends a ``MedicationOrder``
draft, and a DSTU2 server has no ``MedicationRequest`` or ``ServiceRequest``. These tests
replay the sandbox's own requests with no prefetch (so the service fetches every key) against
the test FHIR server speaking each version, on the same patient data, and compare the cards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, TODAY, fixture, rule_ids
from tests.fhir_server import FhirTestServer, demo_resources, in_version, start
from tests.test_fhir_versions import comparable as comparable_card

Serve = Callable[..., FhirTestServer]
RX_VIEW_DSTU2 = "sandbox/rx-view-dstu2-order-select.json"
RX_VIEW_R4 = "sandbox/order-select-r4.json"
CYCLOBENZAPRINE_COURSE = ["cyclobenzaprine-duration", "refractory-spasm-imaging", "muscle-relaxant-class-switch"]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Test FHIR servers holding the demo patients, each speaking the version asked for."""
    running = []

    def make(version: str = "R4", *extra: dict[str, Any], **options: Any) -> FhirTestServer:
        state = FhirTestServer(resources=[*demo_resources(), *extra], version=version, **options)
        running.append(start(state))
        return state

    yield make
    for httpd, thread in running:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _days_ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


def tizanidine_taken(patient: str) -> dict[str, Any]:
    """An active tizanidine course (R4; a DSTU2 server holds it as a MedicationOrder)."""
    return {
        "resourceType": "MedicationRequest",
        "id": "tizanidine-now",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": _days_ago(5),
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "313412"}],
            "text": "tizanidine 4 MG Oral Tablet",
        },
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
            }
        ],
        "dispenseRequest": {"expectedSupplyDuration": {"value": 30, "unit": "days", "code": "d"}},
    }


def lumbar_mri(patient: str) -> dict[str, Any]:
    """A lumbar MRI ordered two months ago (R4; STU3 ProcedureRequest, DSTU2 DiagnosticOrder)."""
    return {
        "resourceType": "ServiceRequest",
        "id": "mri-lumbar",
        "status": "completed",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": _days_ago(60),
        "code": {
            "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}],
            "text": "MRI lumbar spine without contrast",
        },
    }


def sandbox_request(version: str, server: FhirTestServer, patient: str) -> dict[str, Any]:
    """The sandbox's Rx View order (10 mg, one a day, 30 days) as it sends it with a server of
    ``version``, for ``patient``, with no prefetch: the service fetches every key."""
    if version == "DSTU2":
        request = fixture(RX_VIEW_DSTU2)  # the captured DSTU2 request
        draft = request["context"]["draftOrders"]["entry"][0]["resource"]
        draft["patient"]["reference"] = f"Patient/{patient}"
    else:
        request = fixture(RX_VIEW_R4)
        draft = request["context"]["draftOrders"]["entry"][0]["resource"]
        del draft["reasonCode"]  # the DSTU2 capture has no reason
        draft["subject"]["reference"] = f"Patient/{patient}"
        # With an STU3 server the sandbox puts the dose on the dosage itself.
        request["context"]["draftOrders"]["entry"][0]["resource"] = in_version(draft, version)
    request.pop("prefetch")
    request["fhirServer"] = server.base
    request["context"]["patientId"] = patient
    return request


def comparable(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cards without what differs by design (``test_fhir_versions.comparable``)."""
    return [comparable_card(card) for card in cards]


def answer(client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return response.json()["cards"]


SCENARIOS = {
    # A cyclobenzaprine course three weeks ago and sciatica: cumulative duration, MRI, class switch.
    "course-in-history": ("demo-refractory", (), CYCLOBENZAPRINE_COURSE),
    # Tizanidine taken now: the duplicate card, from the medication history alone.
    "relaxant-taken-now": (
        "demo-hepatic",
        (tizanidine_taken("demo-hepatic"),),
        ["cyclobenzaprine-hepatic-impairment", "cyclobenzaprine-duration", "muscle-relaxant-duplicate"],
    ),
    # A lumbar MRI two months ago keeps the MRI card quiet: the imaging history is read too.
    "recent-lumbar-mri": (
        "demo-refractory",
        (lumbar_mri("demo-refractory"),),
        ["cyclobenzaprine-duration", "muscle-relaxant-class-switch"],
    ),
}


@pytest.mark.parametrize("version", ["DSTU2", "STU3"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_sandbox_flow_gets_the_r4_cards_history_included(
    client: TestClient, serve: Serve, version: str, scenario: str
) -> None:
    patient, history, expected = SCENARIOS[scenario]
    r4_server, older_server = serve("R4", *history), serve(version, *history)
    r4 = answer(client, sandbox_request("R4", r4_server, patient))
    assert rule_ids({"cards": r4}) == expected
    older = answer(client, sandbox_request(version, older_server, patient))
    assert comparable(older) == comparable(r4)
    # The server was asked in its own version only, and once for that version.
    asked = {seen.path.split("?")[0].removeprefix("/fhir/") for seen in older_server.seen}
    wanted = {
        "DSTU2": {"metadata", "Condition", "MedicationOrder", "DiagnosticOrder", "ProcedureRequest"},
        "STU3": {"metadata", "Condition", "MedicationRequest", "ProcedureRequest"},
    }[version]
    assert asked == wanted | {f"Patient/{patient}"}


def test_the_cumulative_duration_counts_the_dstu2_course(client: TestClient, serve: Serve) -> None:
    server = serve("DSTU2")
    [duration] = [
        c for c in answer(client, sandbox_request("DSTU2", server, "demo-refractory")) if "taken" in c["summary"]
    ]
    assert duration["source"]["topic"]["code"] == "cyclobenzaprine-duration"
    assert "7 taken + 30 planned" in duration["summary"]  # the 7-day MedicationOrder of three weeks ago


@pytest.mark.parametrize("unknown_type_status", [404, 400])
def test_without_metadata_every_version_is_asked_and_unknown_types_are_no_data(
    client: TestClient, serve: Serve, unknown_type_status: int
) -> None:
    """A DSTU2 server whose /metadata does not answer: the R4 types it lacks (HAPI's 404, or a
    400 not-supported) are no data, its own types are read: no 412, the same cards."""
    server = serve("DSTU2", metadata=False, unknown_type_status=unknown_type_status)
    cards = answer(client, sandbox_request("DSTU2", server, "demo-refractory"))
    assert rule_ids({"cards": cards}) == CYCLOBENZAPRINE_COURSE
    asked = {seen.path.split("?")[0] for seen in server.seen}
    assert {"/fhir/MedicationRequest", "/fhir/ServiceRequest", "/fhir/MedicationOrder"} <= asked


def test_a_lenient_dstu2_server_is_asked_for_its_own_types(client: TestClient, serve: Serve) -> None:
    """A DSTU2 server that answers any type with an empty Bundle: asking it for MedicationRequest
    would silently miss the MedicationOrder history. Its /metadata says DSTU2."""
    server = serve("DSTU2", unknown_type_status=200)
    assert rule_ids({"cards": answer(client, sandbox_request("DSTU2", server, "demo-refractory"))}) == (
        CYCLOBENZAPRINE_COURSE
    )
    assert not server.searched("MedicationRequest")


def test_a_type_left_out_of_the_capability_statement_is_not_asked(client: TestClient, serve: Serve) -> None:
    server = serve("DSTU2", lumbar_mri("demo-refractory"), unlisted={"DiagnosticOrder"})
    cards = answer(client, sandbox_request("DSTU2", server, "demo-refractory"))
    assert not server.searched("DiagnosticOrder")
    # Its imaging orders are DiagnosticOrders it does not list: no imaging data, the MRI card speaks.
    assert rule_ids({"cards": cards}) == CYCLOBENZAPRINE_COURSE
    [mri] = [c for c in cards if c["source"]["topic"]["code"] == "refractory-spasm-imaging"]
    assert "No lumbar MRI or CT from the last 365 days was found in the record" in mri["detail"]


def test_a_type_left_out_of_the_capability_statement_does_not_send_the_service_back_to_metadata(
    client: TestClient, serve: Serve
) -> None:
    """A type the remembered statement does not list is not asked, so nothing says the server
    changed: its /metadata is not read again on every call (the version is kept for an hour)."""
    server = serve("R4", unlisted={"ServiceRequest"})
    for _ in range(3):
        answer(client, sandbox_request("R4", server, "demo-refractory"))
    assert [seen.path for seen in server.seen].count("/fhir/metadata") == 1
    assert not server.searched("ServiceRequest")


def test_a_server_with_no_medication_type_at_all_is_no_data_not_412(client: TestClient, serve: Serve) -> None:
    server = serve("R4", unlisted={"MedicationRequest"})
    cards = answer(client, sandbox_request("R4", server, "demo-refractory"))
    assert "muscle-relaxant-class-switch" not in rule_ids({"cards": cards})  # no history to read
    assert not server.searched("MedicationRequest")


def test_an_unknown_search_parameter_is_a_failed_fetch_not_no_data(client: TestClient, serve: Serve) -> None:
    """HAPI's 400 for a search parameter it does not know names the resource type too: that is
    a failed fetch (412), never a silently empty history."""
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "processing",
                "diagnostics": 'Unknown search parameter "patient" for resource type "MedicationOrder"',
            }
        ],
    }
    server = serve("DSTU2", canned={"MedicationOrder": (400, outcome)})
    response = client.post(SELECT, json=sandbox_request("DSTU2", server, "demo-refractory"))
    assert response.status_code == 412, response.text
    assert response.json()["issue"][0]["expression"] == ["prefetch.medications"]


def test_a_patient_id_sent_as_a_reference_is_the_same_patient(client: TestClient, serve: Serve) -> None:
    """ "Patient/x" (as the CDC opioid CDS requests send it) is patient x: read as Patient/x, not
    Patient/Patient%2Fx, so the age and every card are the same as for "x"."""
    server = serve("R4")
    plain = answer(client, sandbox_request("R4", server, "demo-refractory"))
    server.seen.clear()
    request = sandbox_request("R4", server, "demo-refractory")
    request["context"]["patientId"] = "Patient/demo-refractory"
    assert comparable(answer(client, request)) == comparable(plain)
    assert "/fhir/Patient/demo-refractory" in [seen.path for seen in server.seen]
    assert all("Patient%2F" not in seen.path and "Patient/Patient" not in seen.path for seen in server.seen)


def test_the_version_is_read_once_per_server(client: TestClient, serve: Serve) -> None:
    server = serve("DSTU2")
    for _ in range(3):
        answer(client, sandbox_request("DSTU2", server, "demo-refractory"))
    assert [seen.path for seen in server.seen].count("/fhir/metadata") == 1


def test_a_server_upgraded_to_r4_is_read_again(client: TestClient, serve: Serve) -> None:
    """Remembered as DSTU2, it now answers MedicationOrder with 404: its /metadata is read again
    in the same call and the history read as R4, not missed."""
    server = serve("DSTU2")
    answer(client, sandbox_request("DSTU2", server, "demo-refractory"))
    server.version = "R4"
    server.seen.clear()
    cards = answer(client, sandbox_request("R4", server, "demo-refractory"))
    assert rule_ids({"cards": cards}) == CYCLOBENZAPRINE_COURSE
    assert "/fhir/metadata" in [seen.path for seen in server.seen]
    assert server.searched("MedicationRequest")


def test_a_server_without_metadata_is_not_asked_for_it_on_every_call(client: TestClient, serve: Serve) -> None:
    server = serve("DSTU2", metadata=False)
    for _ in range(3):
        assert rule_ids({"cards": answer(client, sandbox_request("DSTU2", server, "demo-refractory"))}) == (
            CYCLOBENZAPRINE_COURSE
        )
    assert [seen.path for seen in server.seen].count("/fhir/metadata") == 1


def test_a_server_without_metadata_or_a_keys_types_is_not_asked_for_metadata_on_every_call(
    client: TestClient, serve: Serve
) -> None:
    """No imaging type at all and no /metadata: the key is no data on every call, which says
    nothing of an upgrade (a server of no known version was asked every version's types)."""
    server = serve("DSTU2", metadata=False)
    server.canned = {
        kind: server.unknown_type(kind) for kind in ("ServiceRequest", "ProcedureRequest", "DiagnosticOrder")
    }
    for _ in range(3):
        cards = answer(client, sandbox_request("DSTU2", server, "demo-refractory"))
        assert rule_ids({"cards": cards}) == CYCLOBENZAPRINE_COURSE
    assert [seen.path for seen in server.seen].count("/fhir/metadata") == 1
