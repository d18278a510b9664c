"""Prefetch completion against a real FHIR server over HTTP: fetch, page, fail, degrade."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from fastapi.testclient import TestClient

from cds_service import __version__
from cds_service.settings import Settings
from tests.conftest import SELECT, fetching_request, fixture, for_patient, rule_ids
from tests.fhir_server import FhirTestServer

TOKEN = "access-token-for-the-ehr-fhir-server"
FHIR_AUTHORIZATION = {
    "access_token": TOKEN,
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/*.read",
    "subject": "back-spasm-cds",
    "patient": "harness-pt-1",
}
# harness-pt-1's record for a 47-year-old: the age known, no notice says it is not.
ADULT = {"resourceType": "Patient", "id": "harness-pt-1", "birthDate": "1979-01-20"}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def _request(server: str | None, patient_id: str = "harness-pt-1", **prefetch: Any) -> dict[str, Any]:
    """The sandbox's order (10 mg, 30 days) for ``patient_id``, with only the given prefetch keys."""
    request = for_patient(fixture("sandbox/order-select-r4.json"), patient_id)
    request["prefetch"] = prefetch
    del request["context"]["draftOrders"]["entry"][0]["resource"]["reasonCode"]
    if server is None:
        del request["fhirServer"]
    else:
        request["fhirServer"] = server
    return request


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_412(response: Any, *keys: str) -> None:
    assert response.status_code == 412, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "incomplete"
    assert issue["expression"] == [f"prefetch.{key}" for key in keys]
    for key in keys:
        assert key in issue["diagnostics"]


def test_missing_keys_are_fetched_from_fhir_server(client: TestClient, fhir_server: FhirTestServer) -> None:
    body = client.post(SELECT, json=_request(fhir_server.base, patient_id="demo-hepatic")).json()
    assert rule_ids(body) == ["cyclobenzaprine-hepatic-impairment", "cyclobenzaprine-duration"]
    paths = sorted(s.path for s in fhir_server.seen)
    assert paths == [
        "/fhir/Condition?patient=demo-hepatic",
        "/fhir/MedicationRequest?patient=demo-hepatic&_include=MedicationRequest:medication",
        "/fhir/Patient/demo-hepatic",
        "/fhir/ServiceRequest?patient=demo-hepatic",
        "/fhir/metadata",  # its FHIR version, once per server
    ]
    assert all("authorization" not in s.headers for s in fhir_server.seen)  # open server: no token
    # Named for the server's operators, the library and its version left out.
    assert {s.headers["user-agent"] for s in fhir_server.seen} == {f"cds-service/{__version__}"}


def test_fhir_authorization_token_goes_to_the_fhir_server(client: TestClient, fhir_server: FhirTestServer) -> None:
    request = _request(fhir_server.base)
    request["fhirAuthorization"] = FHIR_AUTHORIZATION
    assert client.post(SELECT, json=request).status_code == 200
    assert fhir_server.seen
    assert {s.headers["authorization"] for s in fhir_server.seen} == {f"Bearer {TOKEN}"}


def test_fhir_authorization_token_is_never_logged_or_stored(
    make_client: Callable[..., TestClient],
    fhir_server: FhirTestServer,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client()  # an app of its own: what it stored is read back from its data directory
    caplog.set_level(logging.DEBUG)
    request = _request(fhir_server.base, patient_id="demo-hepatic")
    request["fhirAuthorization"] = FHIR_AUTHORIZATION
    fhir_server.fail_for = {"ServiceRequest"}  # a failed fetch is logged too
    card = client.post(SELECT, json=request).json()["cards"][0]
    feedback = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
    assert client.post(SELECT + "/feedback", json={"feedback": [feedback]}).status_code == 200
    assert "imaging" in caplog.text  # the log did record the call and its failed fetch
    assert TOKEN not in caplog.text
    stored = b"".join(path.read_bytes() for path in settings.data_dir.iterdir())
    assert stored and TOKEN.encode() not in stored


def test_prefetched_keys_are_not_fetched(client: TestClient, fhir_server: FhirTestServer) -> None:
    full = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    full["fhirServer"] = fhir_server.base
    assert rule_ids(client.post(SELECT, json=full).json()) == ["cyclobenzaprine-duration"]
    assert fhir_server.seen == []


def test_null_key_means_no_data(client: TestClient, fhir_server: FhirTestServer) -> None:
    request = _request(
        fhir_server.base, patient_id="demo-hepatic", conditions=None, medications=None, imaging=None, patient=None
    )
    cards = client.post(SELECT, json=request).json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["cyclobenzaprine-duration", "partial-history"]
    assert cards[-1]["summary"] == "No patient record was sent: the checks for older adults did not run"
    assert fhir_server.seen == []


def test_operation_outcome_in_a_key_is_fetched_again(client: TestClient, fhir_server: FhirTestServer) -> None:
    failed = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    request = _request(
        fhir_server.base, patient_id="demo-hepatic", conditions=failed, medications=None, imaging=None, patient=None
    )
    assert "cyclobenzaprine-hepatic-impairment" in rule_ids(client.post(SELECT, json=request).json())
    assert [s.path for s in fhir_server.seen] == ["/fhir/metadata", "/fhir/Condition?patient=demo-hepatic"]


def test_operation_outcome_without_fhir_server_is_412(client: TestClient) -> None:
    """The 412 said "not in the request" of a key the request held: an integrator looked in the
    wrong place for why the EHR's prefetch failed."""
    failed = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    response = client.post(SELECT, json=_request(None, conditions=failed))
    assert_412(response, "conditions", "medications")
    assert response.json()["issue"][0]["diagnostics"] == (
        "prefetch.conditions: an OperationOutcome in the request (the EHR could not prefetch it), and the "
        "request has no fhirServer; prefetch.medications: not in the request, and the request has no fhirServer"
    )


def test_no_fhir_server_and_missing_keys_is_412(client: TestClient) -> None:
    response = client.post(SELECT, json=_request(None))
    assert_412(response, "conditions", "medications")
    assert "no fhirServer" in response.json()["issue"][0]["diagnostics"]


def test_fhir_server_down_is_412(client: TestClient) -> None:
    assert_412(
        client.post(SELECT, json=_request(f"http://127.0.0.1:{_closed_port()}/fhir")), "conditions", "medications"
    )


def test_fhir_server_errors_are_412(client: TestClient, fhir_server: FhirTestServer) -> None:
    fhir_server.fail_status = 500
    assert_412(client.post(SELECT, json=_request(fhir_server.base)), "conditions", "medications")


def test_slow_fhir_server_is_cut_off_by_the_deadline(client: TestClient, fhir_server: FhirTestServer) -> None:
    fhir_server.delay = 1.5  # the test settings' deadline is 1 s
    assert_412(client.post(SELECT, json=_request(fhir_server.base)), "conditions", "medications")


def test_search_pages_are_followed(client: TestClient, fhir_server: FhirTestServer) -> None:
    fhir_server.page_size = 1
    fhir_server.add(
        *(
            {
                **fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")["prefetch"][
                    "conditions"
                ]["entry"][0]["resource"],
                "id": f"c{i}",
                "code": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]
                },
            }
            for i in range(3)
        ),
        fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")["prefetch"][
            "conditions"
        ]["entry"][0]["resource"],
    )
    body = client.post(SELECT, json=_request(fhir_server.base)).json()
    assert rule_ids(body) == ["cyclobenzaprine-hepatic-impairment"]  # the liver condition is on page 4
    assert len(fhir_server.searched("Condition")) == 4


def test_pages_past_the_limit_are_not_read_and_the_cards_say_so(
    make_client: Callable[..., TestClient], fhir_server: FhirTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    fhir_server.page_size = 1
    liver = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")["prefetch"]
    fhir_server.add(*({**liver["conditions"]["entry"][0]["resource"], "id": f"c{i}"} for i in range(3)))
    client = make_client(fhir_max_pages=2)
    response = client.post(SELECT, json=_request(fhir_server.base))
    assert response.status_code == 200
    assert len(fhir_server.searched("Condition")) == 2
    assert "a fhirServer search has over 2 pages (CDS_FHIR_MAX_PAGES): the rest not read" in caplog.text
    [notice] = [card for card in response.json()["cards"] if card["source"]["topic"]["code"] == "partial-history"]
    assert notice["indicator"] == "warning" and notice == response.json()["cards"][-1]
    assert notice["summary"] == "The patient's history was not read in full: checks may be incomplete"
    assert "conditions" in notice["detail"]


def test_a_prefetch_with_more_pages_and_no_fhir_server_says_the_history_is_partial(client: TestClient) -> None:
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request.pop("fhirServer", None)
    request["prefetch"]["medications"]["link"] = [{"relation": "next", "url": "https://ehr.example.org/fhir/p2"}]
    cards = client.post(SELECT, json=request).json()["cards"]
    assert [card["source"]["topic"]["code"] for card in cards] == ["cyclobenzaprine-duration", "partial-history"]
    assert "medication history" in cards[-1]["detail"]


def _outcome_entry(severity: str) -> dict[str, Any]:
    """A search's own OperationOutcome (CDS Hooks: services SHOULD check prefetch for them)."""
    issue = {"severity": severity, "code": "incomplete", "diagnostics": "some results were not returned"}
    return {"resource": {"resourceType": "OperationOutcome", "issue": [issue]}, "search": {"mode": "outcome"}}


@pytest.mark.parametrize(("severity", "partial"), [("error", True), ("fatal", True), ("warning", False)])
@pytest.mark.parametrize("how", ["prefetched", "fetched"])
def test_a_search_whose_outcome_says_it_failed_is_read_as_partial(
    client: TestClient, fhir_server: FhirTestServer, how: str, severity: str, partial: bool
) -> None:
    """A searchset can carry an OperationOutcome entry of its own: at error severity the search
    answered in part, and was read as the patient's whole medication history."""
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    medications = request["prefetch"]["medications"]
    medications.setdefault("entry", []).append(_outcome_entry(severity))
    if how == "fetched":
        fhir_server.canned["MedicationRequest"] = (200, medications)
        request["fhirServer"] = fhir_server.base
        request.pop("fhirAuthorization", None)
        del request["prefetch"]["medications"]
    cards = client.post(SELECT, json=request).json()["cards"]
    expected = ["cyclobenzaprine-duration", "partial-history"] if partial else ["cyclobenzaprine-duration"]
    assert [card["source"]["topic"]["code"] for card in cards] == expected
    if partial:
        assert "medication history" in cards[-1]["detail"]


def test_paginated_prefetch_is_completed_from_the_same_server_only(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    liver = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")["prefetch"][
        "conditions"
    ]["entry"][0]["resource"]
    fhir_server.add(liver)
    first_page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [],
        "link": [{"relation": "next", "url": f"{fhir_server.base}/Condition?patient=harness-pt-1&_page=0"}],
    }
    request = _request(fhir_server.base, conditions=first_page, medications=None, imaging=None, patient=ADULT)
    assert rule_ids(client.post(SELECT, json=request).json()) == ["cyclobenzaprine-hepatic-impairment"]

    fhir_server.seen.clear()
    first_page["link"][0]["url"] = "http://127.0.0.2:9/fhir/Condition?patient=harness-pt-1&_page=0"
    assert rule_ids(client.post(SELECT, json=request).json()) == ["cyclobenzaprine-duration", "partial-history"]
    assert fhir_server.seen == []


@pytest.mark.parametrize(
    "tail",
    [
        "/../Condition?patient=harness-pt-1&_page=0",  # sent as /Condition: off the FHIR base
        "/%2e%2e/Condition?patient=harness-pt-1&_page=0",
        "/./../Condition?patient=harness-pt-1&_page=0",
        "-admin/Condition?patient=harness-pt-1&_page=0",  # a path beside the base, not under it
        "/Condition?patient=harness pt 1&_page=0",  # rewritten by the client before sending
        "/Condition?patient=h\u00e4rness&_page=0",
        "/..%2F..%2Fadmin?x=1",  # read as /admin by a server that decodes before the dots
        "/x/%252e%252e/admin?x=1",  # twice encoded
        "/x/..;/..;/admin?x=1",  # Tomcat and Jetty: "..;" is ".."
        "/x/..%5C..%5Cadmin?x=1",
    ],
)
def test_a_next_link_that_would_leave_the_fhir_base_is_not_followed(
    client: TestClient, fhir_server: FhirTestServer, caplog: pytest.LogCaptureFixture, tail: str
) -> None:
    first_page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [],
        "link": [{"relation": "next", "url": fhir_server.base + tail}],
    }
    request = _request(fhir_server.base, conditions=first_page, medications=None, imaging=None, patient=None)
    assert client.post(SELECT, json=request).status_code == 200
    assert fhir_server.seen == []
    assert "a next-page link of fhirServer points off it" in caplog.text
    assert "harness" not in caplog.text


def test_optional_data_unavailable_degrades_the_card(client: TestClient, fhir_server: FhirTestServer) -> None:
    fhir_server.fail_for = {"ServiceRequest", "Patient"}
    body = client.post(SELECT, json=_request(fhir_server.base, patient_id="demo-refractory")).json()
    assert rule_ids(body) == [
        "cyclobenzaprine-duration",
        "refractory-spasm-imaging",
        "muscle-relaxant-class-switch",
        "partial-history",
    ]
    [mri] = [c for c in body["cards"] if c["source"]["topic"]["code"] == "refractory-spasm-imaging"]
    assert "imaging history could not be checked" in mri["detail"]


FAILED = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
NOT_READ = "The patient record could not be read: the checks for older adults did not run"


@pytest.mark.parametrize("how", ["fetch-fails", "client-says-it-failed"])
def test_a_patient_record_that_could_not_be_read_is_said(
    client: TestClient, fhir_server: FhirTestServer, how: str
) -> None:
    """A 78-year-old's 10 mg order whose Patient record the server failed to give: the age is
    unknown, and the older adults' checks stayed silent with nothing on the screen to say so."""
    if how == "fetch-fails":
        fhir_server.fail_for = {"Patient"}
        request = _request(fhir_server.base, conditions=None, medications=None, imaging=None)
    else:
        request = _request(None, conditions=None, medications=None, imaging=None, patient=FAILED)
    cards = client.post(SELECT, json=request).json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["cyclobenzaprine-duration", "partial-history"]
    assert cards[-1]["summary"] == NOT_READ  # not "no patient record was sent": it failed
    assert "Patient" not in cards[-1]["detail"] and "harness-pt-1" not in cards[-1]["detail"]


def test_a_patient_record_the_client_did_not_send_is_said(client: TestClient) -> None:
    """No Patient prefetch and no fhirServer: the age is unknown, as the clinical specification
    says, and the older adults' checks silent; the clinician is told so, or reads their silence as
    a check done (clinical safety review H5)."""
    request = _request(None, conditions=None, medications=None, imaging=None)
    cards = client.post(SELECT, json=request).json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["cyclobenzaprine-duration", "partial-history"]
    assert cards[-1]["summary"] == "No patient record was sent: the checks for older adults did not run"


@pytest.mark.parametrize(
    "value",
    [
        "Patient's active medications",  # HealthChain's examples send strings
        42,
        ["MedicationRequest/1"],
        {"not": "a resource"},
        {"resourceType": "Bundle", "entry": "broken"},
    ],
)
def test_a_key_the_service_never_asked_for_is_ignored_whatever_it_holds(client: TestClient, value: Any) -> None:
    full = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    expected = rule_ids(client.post(SELECT, json=full).json())
    full["prefetch"]["activeMedications"] = value
    response = client.post(SELECT, json=full)
    assert response.status_code == 200, response.text
    assert rule_ids(response.json()) == expected == ["cyclobenzaprine-duration"]


@pytest.mark.parametrize(
    ("value", "said"),
    [("none", "a string"), ([], "an array"), ({"entry": []}, "an object without a resourceType"), (7, "a number")],
)
def test_a_key_of_the_service_must_hold_a_resource_or_null(client: TestClient, value: Any, said: str) -> None:
    full = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    full["prefetch"]["medications"] = value
    response = client.post(SELECT, json=full)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["prefetch.medications"]
    assert said in issue["diagnostics"]


@pytest.mark.parametrize("links", [5, "next", [{"relation": "next", "url": 7}], {"relation": "next"}])
def test_a_bundle_with_odd_links_is_read_not_a_500(client: TestClient, fhir_server: FhirTestServer, links: Any) -> None:
    bundle = {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": []}
    request = _request(fhir_server.base, conditions=bundle, medications=None, imaging=None, patient=None)
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert fhir_server.seen == []


HEPATIC = "cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json"


def _wrapped(searchset: dict[str, Any]) -> dict[str, Any]:
    """A searchset as a batch's answer holds it: the search's Bundle inside another."""
    return {"resourceType": "Bundle", "type": "batch-response", "entry": [{"resource": searchset}]}


@pytest.mark.parametrize(
    ("shape", "field"),
    [
        (_wrapped, "prefetch.conditions"),
        (lambda searchset: {**searchset, "resourceType": "bundle"}, "prefetch.conditions"),
        (lambda searchset: {"resourceType": "Patient", "id": "harness-pt-1"}, "prefetch.conditions"),
    ],
    ids=["batch-response", "lower-case-bundle", "a-patient"],
)
def test_a_prefetch_key_holding_what_its_search_does_not_answer_is_400(
    client: TestClient, shape: Callable[[dict[str, Any]], dict[str, Any]], field: str
) -> None:
    """Read as "no conditions", these shapes hid the hepatic failure and its critical card."""
    request = fixture(HEPATIC)
    request["prefetch"]["conditions"] = shape(request["prefetch"]["conditions"])
    response = client.post(SELECT, json=request)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == [field]


def test_an_optional_key_holding_what_its_search_does_not_answer_is_read_as_not_sent(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Prior imaging only sharpens a card: a misshapen ``imaging`` is not the reason to lose the
    MAO inhibitor's critical card (a 400 for the whole call); it is left out, as a key not sent."""
    request = fixture("cyclobenzaprine-maoi/fires-phenelzine-active.json")
    request["prefetch"]["imaging"] = _wrapped({"resourceType": "Bundle", "type": "searchset", "entry": []})
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert "cyclobenzaprine-maoi" in rule_ids(response.json())
    assert "prefetch.imaging: a batch's Bundle (of Bundles)" in caplog.text


@pytest.mark.parametrize(
    "answer",
    [
        _wrapped({"resourceType": "Bundle", "type": "searchset", "entry": []}),
        {"resourceType": "Binary", "contentType": "application/fhir+json"},
        {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]},
    ],
    ids=["batch-response", "binary", "operation-outcome-with-200"],
)
def test_a_search_answered_with_something_else_is_a_failed_fetch(
    client: TestClient, fhir_server: FhirTestServer, answer: dict[str, Any]
) -> None:
    fhir_server.canned["Condition"] = (200, answer)
    request = _request(fhir_server.base, patient_id="demo-hepatic")
    assert_412(client.post(SELECT, json=request), "conditions")


@pytest.mark.parametrize("kind", ["Binary", "Condition"])
def test_a_patient_read_answered_with_another_type_is_a_failed_read(
    client: TestClient, fhir_server: FhirTestServer, kind: str
) -> None:
    """``Patient/{id}`` answered with a Binary or a Condition is no Patient record: the age is
    unknown, and the clinician is told the older adults' checks did not run (it was read as the
    record, and they were silent with no word)."""
    fhir_server.canned["Patient"] = (200, {"resourceType": kind, "id": "harness-pt-1"})
    request = _request(fhir_server.base, conditions=None, medications=None, imaging=None)
    cards = client.post(SELECT, json=request).json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["cyclobenzaprine-duration", "partial-history"]
    assert cards[-1]["summary"] == NOT_READ


def test_a_patient_id_is_one_value_in_every_fetch_whatever_it_holds(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """A patient id is the EHR's free text: its ``&``, ``=`` and ``/`` are escaped in each query,
    or one id holding them would add a search parameter of its own, or read another resource."""
    patient_id = "pt-1&_id=other/x"
    assert client.post(SELECT, json=for_patient(fetching_request(fhir_server.base), patient_id)).status_code == 200
    searches = [urlsplit(seen.path) for seen in fhir_server.seen if "?" in seen.path]
    assert {url.path for url in searches} == {"/fhir/Condition", "/fhir/MedicationRequest", "/fhir/ServiceRequest"}
    assert all(parse_qs(url.query)["patient"] == [patient_id] and "_id" not in parse_qs(url.query) for url in searches)
    [read] = [seen.path for seen in fhir_server.seen if seen.path.startswith("/fhir/Patient/")]
    assert [unquote(part) for part in read.removeprefix("/fhir/").split("/")] == ["Patient", patient_id]
