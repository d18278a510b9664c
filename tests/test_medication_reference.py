"""A drug named by ``medicationReference`` to a Medication resource that came with the request:
in the draft Bundle, or in the prefetched history beside the MedicationRequests (a search with
``_include``). Each fires as its coded twin does; a draft whose reference leads nowhere is said
not checked."""

from __future__ import annotations

import copy
import gc
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture, rule_ids
from tests.fhir_server import FhirTestServer

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _medication(id_: str, code: str, display: str) -> dict[str, Any]:
    return {
        "resourceType": "Medication",
        "id": id_,
        "code": {"coding": [{"system": RXNORM, "code": code, "display": display}]},
    }


def _by_reference(order: dict[str, Any], reference: str) -> None:
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": reference}


def _post(client: TestClient, request: dict[str, Any]) -> list[str]:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return rule_ids(response.json())


def _cards(client: TestClient, request: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Each card's rule, indicator and summary: what the clinician sees of it."""
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return [(c["source"]["topic"]["code"], c["indicator"], c["summary"]) for c in response.json()["cards"]]


@pytest.mark.parametrize("where", ["draftOrders", "prefetch"])
@pytest.mark.parametrize(
    "reference",
    [
        "Medication/flexeril-10",
        "https://ehr.example.org/fhir/Medication/flexeril-10",
        "https://ehr.example.org/fhir/Medication/flexeril-10/_history/2",  # a version of it
        "Medication/flexeril-10/",  # a trailing slash, as some servers write their links
    ],
)
def test_draft_naming_its_drug_by_reference_fires(client: TestClient, where: str, reference: str) -> None:
    coded = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request = copy.deepcopy(coded)
    bundle = request["context"]["draftOrders"]
    _by_reference(bundle["entry"][0]["resource"], reference)
    medication = _medication("flexeril-10", "828348", "cyclobenzaprine hydrochloride 10 MG Oral Tablet")
    target = bundle if where == "draftOrders" else request["prefetch"]["medications"]
    target.setdefault("entry", []).append({"resource": medication})
    cards = _cards(client, request)
    assert "cyclobenzaprine-duration" in [rule for rule, _, _ in cards]
    assert cards == _cards(client, coded)


def test_a_draft_naming_its_drug_by_the_full_url_of_an_entry_fires(client: TestClient) -> None:
    """A Bundle's entries refer to each other by ``fullUrl``, a ``urn:uuid:`` for a resource not
    yet on a server (FHIR Bundle rules): read as no drug, the order got no card at all."""
    coded = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request = copy.deepcopy(coded)
    bundle = request["context"]["draftOrders"]
    url = "urn:uuid:0f3c1e2a-6d55-4d1e-9a57-2b8f0c1d9e4b"
    _by_reference(bundle["entry"][0]["resource"], url)
    medication = _medication("m1", "828348", "cyclobenzaprine hydrochloride 10 MG Oral Tablet")
    bundle["entry"].append({"fullUrl": url, "resource": medication})
    assert _cards(client, request) == _cards(client, coded)


@pytest.mark.parametrize("shape", ["concept-in-a-list", "code-a-number"])
def test_a_drug_code_in_a_near_miss_shape_is_read(client: TestClient, shape: str) -> None:
    """A CodeableConcept sent as a one-item array (as other arrays come as single objects), or an
    RxNorm code as a JSON number: the drug was not recognised, and every card was lost."""
    coded = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    request = copy.deepcopy(coded)
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    concept = order["medicationCodeableConcept"]
    if shape == "concept-in-a-list":
        order["medicationCodeableConcept"] = [concept]
    else:
        concept.pop("text", None)
        for coding in concept["coding"]:
            coding["code"] = int(coding["code"])
    assert _cards(client, request) == _cards(client, coded)


NOT_CHECKED = (
    "draft-not-checked",
    "warning",
    "A draft order was not checked: its drug could not be identified",
)


def test_a_draft_whose_reference_leads_nowhere_is_said_not_checked(client: TestClient) -> None:
    """No Medication in the request and no fhirServer to ask: the draft names no drug, and the
    answer was silent, as if it had been checked and found clear."""
    request = copy.deepcopy(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    _by_reference(request["context"]["draftOrders"]["entry"][0]["resource"], "Medication/flexeril-10")
    del request["fhirServer"]
    assert _cards(client, request) == [NOT_CHECKED]


@pytest.mark.parametrize("medication", [True, False], ids=["included", "absent"])
def test_history_order_naming_its_drug_by_reference(client: TestClient, medication: bool) -> None:
    request = copy.deepcopy(fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json"))
    entries = request["prefetch"]["medications"]["entry"]
    _by_reference(entries[0]["resource"], "Medication/tizanidine-2")
    if medication:
        entries.append({"resource": _medication("tizanidine-2", "313412", "tizanidine 2 MG Oral Tablet")})
    assert ("muscle-relaxant-duplicate" in _post(client, request)) is medication
    if medication:
        coded = fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json")
        assert _cards(client, request) == _cards(client, coded)
    else:  # the order names no drug: the duplicate it hides is unseen, and the answer says so
        assert "partial-history" in _post(client, request)


def test_a_history_order_whose_medication_has_a_code_of_no_system_is_read_in_part(client: TestClient) -> None:
    """A Medication coded ``{"code": "313412"}`` alone names no drug (a code means nothing without
    its system): a draft naming one was said not checked, a history order naming one was silent."""
    request = copy.deepcopy(fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json"))
    entries = request["prefetch"]["medications"]["entry"]
    _by_reference(entries[0]["resource"], "Medication/tizanidine-2")
    entries.append(
        {"resource": {"resourceType": "Medication", "id": "tizanidine-2", "code": {"coding": [{"code": "313412"}]}}}
    )
    del request["fhirServer"]
    assert "partial-history" in _post(client, request)


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({}, False),  # the MAO inhibitor rule looks back 365 days: nothing reads it
        ({"CDS_RULES__CYCLOBENZAPRINE_MAOI__LOOKBACK_DAYS": "730"}, True),
        ({"CDS_RULES__MUSCLE_RELAXANT_CLASS_SWITCH__LOOKBACK_DAYS": "730"}, True),
        (
            {
                "CDS_RULES__CYCLOBENZAPRINE_MAOI__LOOKBACK_DAYS": "730",
                "CDS_RULES__CYCLOBENZAPRINE_MAOI__ENABLED": "false",
            },
            False,
        ),
    ],
)
def test_how_far_back_a_history_order_leading_nowhere_is_said_follows_the_rules_configured(
    monkeypatch: pytest.MonkeyPatch, defaults: Callable[..., TestClient], overrides: dict[str, str], said: bool
) -> None:
    """An order finished 400 days ago hides something only from a check configured to read that far
    back, and only while that check is on."""
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    request = copy.deepcopy(fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json"))
    entry = request["prefetch"]["medications"]["entry"][0]["resource"]
    _by_reference(entry, "Medication/tizanidine-2")
    entry["status"], entry["authoredOn"] = "completed", "2025-10-17"  # 400 days before 2026-11-21
    del request["fhirServer"]
    client = defaults(auth_mode="off")
    assert ("partial-history" in _post(client, request)) is said


@pytest.mark.parametrize("order", ["entered-in-error", "the-drafts-own-copy", "blank-reference", "ended-long-ago"])
def test_a_history_order_leading_nowhere_that_no_check_reads_is_not_said(client: TestClient, order: str) -> None:
    """Only an order a check would read leaves the history read in part: not one entered in
    error, not the draft itself as the history lists it, not a reference of blanks, not one
    finished before any rule looks back (the MAO inhibitor rule's 365 days)."""
    request = copy.deepcopy(fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json"))
    entry = request["prefetch"]["medications"]["entry"][0]["resource"]
    _by_reference(entry, "Medication/tizanidine-2")
    if order == "entered-in-error":
        entry["status"] = "entered-in-error"
    elif order == "the-drafts-own-copy":  # naming its drug as the draft does: said not checked
        draft = request["context"]["draftOrders"]["entry"][0]["resource"]
        entry["id"] = draft["id"]
        _by_reference(draft, "Medication/tizanidine-2")
    elif order == "blank-reference":
        entry["medicationReference"] = {"reference": "Medication/"}
    else:
        entry["status"], entry["authoredOn"] = "completed", "2025-11-20"  # today is 2026-11-21
    del request["fhirServer"]  # nothing to ask: what the request holds decides
    assert "partial-history" not in _post(client, request)
    request = copy.deepcopy(fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json"))
    entry = request["prefetch"]["medications"]["entry"][0]["resource"]
    entry["status"], entry["authoredOn"] = "completed", "2025-11-21"
    _by_reference(entry, "Medication/x")
    entry["medicationReference"]["display"] = "   "  # blanks name nothing
    del request["fhirServer"]
    assert "partial-history" in _post(client, request)


def test_a_history_order_leading_nowhere_under_the_id_of_a_draft_of_a_known_drug_is_said(client: TestClient) -> None:
    """The review's: under the id of a draft of another drug, or of a drug the draft names
    otherwise, it is no copy the draft's notice covers: its drug is not known, and it is said."""
    request = copy.deepcopy(fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json"))
    entry = request["prefetch"]["medications"]["entry"][0]["resource"]
    _by_reference(entry, "Medication/tizanidine-2")
    entry["id"] = request["context"]["draftOrders"]["entry"][0]["resource"]["id"]
    del request["fhirServer"]
    assert "partial-history" in _post(client, request)


def test_a_history_order_naming_its_medication_by_the_full_url_of_an_entry_is_read(client: TestClient) -> None:
    """A Synthea-style history: the order names its Medication by the ``urn:uuid:`` of another
    entry of the same Bundle. Only the draft Bundle's entries were read by their fullUrl: the
    duplicate went unseen, and the history was said read in part."""
    coded = fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json")
    request = copy.deepcopy(coded)
    entries = request["prefetch"]["medications"]["entry"]
    _by_reference(entries[0]["resource"], "urn:uuid:5f3e0c2a-1b7d-4c55-9a61-0d2f8e4b7c19")
    medication = _medication("tizanidine-2", "313412", "tizanidine 2 MG Oral Tablet")
    entries.append({"fullUrl": "urn:uuid:5f3e0c2a-1b7d-4c55-9a61-0d2f8e4b7c19", "resource": medication})
    assert _cards(client, request) == _cards(client, coded)


@pytest.mark.parametrize("shape", ["contained", "concept-in-a-list", "display-only"])
def test_history_order_naming_its_drug_another_way_is_read(client: TestClient, shape: str) -> None:
    """A history order's drug named by a contained Medication, by a concept sent as a one-item
    array, or only by the reference's display (its Medication absent): each fires as the concept
    written inline does. Asked twice: the second call is answered from what the first left in the
    per-process table of concepts (``bench/variety.py`` measures what that saves)."""
    coded = fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json")
    request = copy.deepcopy(coded)
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    concept = order.pop("medicationCodeableConcept")
    if shape == "contained":
        order["contained"] = [{"resourceType": "Medication", "id": "m1", "code": concept}]
        order["medicationReference"] = {"reference": "#m1"}
    elif shape == "concept-in-a-list":
        order["medicationCodeableConcept"] = [concept]
    else:
        order["medicationReference"] = {"reference": "Medication/gone", "display": "tizanidine 2 MG Oral Tablet"}
    expected = _cards(client, coded)
    assert "muscle-relaxant-duplicate" in [rule for rule, _, _ in expected]
    assert _cards(client, request) == expected
    assert _cards(client, request) == expected


@pytest.mark.parametrize("where", ["draftOrders", "prefetch"])
def test_a_contained_resource_of_another_type_names_no_drug(client: TestClient, where: str) -> None:
    """``#m1`` meeting a contained Substance (not a Medication) leads nowhere: read as the
    cyclobenzaprine its code names, the order got the drug's cards though it names no Medication."""
    path = (
        "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
        if where == "draftOrders"
        else "muscle-relaxant-duplicate/fires-tizanidine-active.json"
    )
    rule = "cyclobenzaprine-duration" if where == "draftOrders" else "muscle-relaxant-duplicate"
    request = copy.deepcopy(fixture(path))
    bundle = request["context"]["draftOrders"] if where == "draftOrders" else request["prefetch"]["medications"]
    order = bundle["entry"][0]["resource"]
    concept = order.pop("medicationCodeableConcept")
    order["contained"] = [{"resourceType": "Substance", "id": "m1", "code": concept}]
    order["medicationReference"] = {"reference": "#m1"}
    assert rule not in _post(client, request)
    order["contained"][0]["resourceType"] = "Medication"
    assert rule in _post(client, request)


def test_a_null_reference_is_read_by_its_display(client: TestClient) -> None:
    """``"reference": null`` beside a display (an EHR's empty field) is no reference: the display
    names the drug, as it does when the reference leads nowhere. It pins behaviour: before, the
    null was looked up as "None", which led nowhere, and the display was read the same way."""
    coded = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request = copy.deepcopy(coded)
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    display = order.pop("medicationCodeableConcept")["coding"][0]["display"]
    order["medicationReference"] = {"reference": None, "display": display}
    assert "cyclobenzaprine-duration" in _post(client, request)


@pytest.mark.parametrize("medication", [True, False], ids=["included", "absent"])
def test_a_fetched_history_order_naming_its_drug_by_reference(
    client: TestClient, fhir_server: FhirTestServer, medication: bool
) -> None:
    """No prefetch for the medications: the search on ``fhirServer`` answers with the order and,
    included beside it (``_include``, Epic's way), its Medication, which names the drug."""
    coded = fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json")
    request = copy.deepcopy(coded)
    searchset = request["prefetch"].pop("medications")
    _by_reference(searchset["entry"][0]["resource"], "Medication/tizanidine-2")
    if medication:
        included = _medication("tizanidine-2", "313412", "tizanidine 2 MG Oral Tablet")
        searchset["entry"].append({"resource": included, "search": {"mode": "include"}})
    fhir_server.canned["MedicationRequest"] = (200, searchset)
    request["fhirServer"] = fhir_server.base
    assert ("muscle-relaxant-duplicate" in _post(client, request)) is medication
    assert fhir_server.searched("MedicationRequest")


EPIC_LOCAL = "urn:oid:1.2.840.114350.1.13.0.1.7.2.698288"  # an Epic-style local medication code system


@pytest.mark.parametrize("where", ["included", "contained"])
def test_a_medication_coded_only_locally_is_read_by_the_references_display(client: TestClient, where: str) -> None:
    """A Medication whose code is a site's own, with no text, named nothing, and the display on
    the reference, which named the drug, was not read: sending the Medication lost the card that
    the display alone gave."""
    coded = fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json")
    request = copy.deepcopy(coded)
    entries = request["prefetch"]["medications"]["entry"]
    order = entries[0]["resource"]
    del order["medicationCodeableConcept"]
    local = {"resourceType": "Medication", "id": "m1", "code": {"coding": [{"system": EPIC_LOCAL, "code": "12345"}]}}
    if where == "included":
        entries.append({"resource": local, "search": {"mode": "include"}})
        reference = "Medication/m1"
    else:
        order["contained"] = [local]
        reference = "#m1"
    order["medicationReference"] = {"reference": reference, "display": "tizanidine 2 MG Oral Tablet"}
    assert _cards(client, request) == _cards(client, coded)


def test_a_medication_in_a_prefetch_key_the_service_never_asked_for_is_not_read(client: TestClient) -> None:
    """Keys the service did not declare are ignored whatever they hold (``read_prefetch``): a
    Medication there named the history's drug, and one of the same id there replaced the
    included one (baclofen for tizanidine: another card)."""
    coded = fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json")
    request = copy.deepcopy(coded)
    entries = request["prefetch"]["medications"]["entry"]
    _by_reference(entries[0]["resource"], "Medication/tizanidine-2")
    baclofen = _medication("tizanidine-2", "197378", "baclofen 10 MG Oral Tablet")
    request["prefetch"]["zz"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": baclofen}]}
    assert "muscle-relaxant-duplicate" not in _post(client, request)  # the reference leads nowhere
    entries.append({"resource": _medication("tizanidine-2", "313412", "tizanidine 2 MG Oral Tablet")})
    assert _cards(client, request) == _cards(client, coded)


def test_a_reference_sent_as_an_array_is_read(client: TestClient) -> None:
    """One reference sent as a one-item array, as concepts are sometimes sent: the drug was not
    recognised, though its display named it."""
    coded = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request = copy.deepcopy(coded)
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    display = order.pop("medicationCodeableConcept")["coding"][0]["display"]
    order["medicationReference"] = [{"display": display}]
    assert "cyclobenzaprine-duration" in _post(client, request)


@pytest.mark.parametrize(("contained_id", "fires"), [("#m1", True), ("m2", False), ("##m1", False)])
def test_a_contained_medication_whose_id_was_written_with_its_hash_is_read(
    client: TestClient, contained_id: str, fires: bool
) -> None:
    """``"id": "#m1"`` for ``"reference": "#m1"``: the ``#`` belongs to the reference, but clients
    write it into the id too, and the draft named no drug and got no card."""
    request = copy.deepcopy(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    order["contained"] = [
        {"resourceType": "Medication", "id": contained_id, "code": order.pop("medicationCodeableConcept")}
    ]
    order["medicationReference"] = {"reference": "#m1"}
    assert ("cyclobenzaprine-duration" in _post(client, request)) is fires


def test_a_contained_medication_without_its_type_is_read(client: TestClient) -> None:
    """``#m1`` meeting a contained resource with no ``resourceType`` (a client's omission) is read
    as the Medication it is referenced as, as before types were checked: only another type is
    refused."""
    request = copy.deepcopy(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    order["contained"] = [{"id": "m1", "code": order.pop("medicationCodeableConcept")}]
    order["medicationReference"] = {"reference": "#m1"}
    assert "cyclobenzaprine-duration" in _post(client, request)


def _fetched_by_reference(fhir_server: FhirTestServer, **reference: str) -> dict[str, Any]:
    """The tizanidine duplicate's request with its history on ``fhirServer``, the active
    tizanidine order naming its drug by ``reference`` alone, its Medication on the server."""
    request = copy.deepcopy(fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json"))
    orders = [entry["resource"] for entry in request["prefetch"].pop("medications")["entry"]]
    del orders[0]["medicationCodeableConcept"]
    orders[0]["medicationReference"] = reference
    fhir_server.add(*orders, _medication("tizanidine-2", "313412", "tizanidine 2 MG Oral Tablet"))
    request["fhirServer"] = fhir_server.base
    return request


def test_long_medication_ids_are_asked_for_within_a_url_servers_take(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """Fifty ids of 200 characters made a 10 KB URL, past many servers' 8 KB: the ids a search
    asks for stay within 2,000 characters, and every one is asked."""
    fhir_server.includes = False
    request = _fetched_by_reference(fhir_server, reference="Medication/tizanidine-2")
    order = next(r for r in fhir_server.resources if "medicationReference" in r)
    long_ids = [f"m{i:02d}" + "x" * 197 for i in range(30)]
    for i, id_ in enumerate(long_ids):
        fhir_server.add({**order, "id": f"old-{i}", "medicationReference": {"reference": f"Medication/{id_}"}})
    assert "muscle-relaxant-duplicate" in _post(client, request)
    asked = [s.path.partition("_id=")[2].split("&")[0].split(",") for s in fhir_server.searched("Medication?")]
    assert all(len(",".join(ids)) <= 2050 for ids in asked) and len(asked) == 4
    assert sorted(i for ids in asked for i in ids) == sorted(["tizanidine-2", *long_ids])


@pytest.mark.parametrize("supported", [True, False], ids=["include-supported", "include-not-said"])
def test_a_fetched_orders_medications_are_asked_for(
    client: TestClient, fhir_server: FhirTestServer, supported: bool
) -> None:
    """A history order naming its drug only by ``Medication/x`` (no display): a server need not
    send the Medication unasked, and the duplicate-therapy card was lost. Where its
    CapabilityStatement lists ``MedicationRequest:medication`` the search asks for it; where not
    (a server may refuse what it does not support), the Medication is then read by its id."""
    request = _fetched_by_reference(fhir_server, reference="Medication/tizanidine-2")
    fhir_server.includes = supported
    assert _cards(client, request) == _cards(client, fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json"))
    [search] = fhir_server.searched("MedicationRequest")
    assert ("_include=MedicationRequest:medication" in search.path) is supported
    by_id = [s.path for s in fhir_server.searched("Medication?")]
    assert by_id == ([] if supported else ["/fhir/Medication?_id=tizanidine-2&_count=50"])


@pytest.mark.parametrize(
    "reference",
    [
        {"reference": "Medication/tizanidine-2", "display": "tizanidine 2 MG Oral Tablet"},  # named by its display
        {"reference": "https://elsewhere.example.org/fhir/Medication/tizanidine-2"},  # on another server
        {"reference": "#tizanidine-2"},  # contained (here: not)
    ],
    ids=["display", "another-server", "contained"],
)
def test_a_medication_is_asked_for_only_where_it_alone_names_the_drug_on_this_server(
    client: TestClient, fhir_server: FhirTestServer, reference: dict[str, str]
) -> None:
    fhir_server.includes = False
    request = _fetched_by_reference(fhir_server, **reference)
    assert ("muscle-relaxant-duplicate" in _post(client, request)) is ("display" in reference)
    assert fhir_server.searched("Medication?") == []


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "stopped"])
def test_the_medication_of_an_order_never_given_is_not_asked_for(
    client: TestClient, fhir_server: FhirTestServer, status: str
) -> None:
    """No check reads an order entered in error or cancelled: its Medication is not asked for, and
    a search for it that failed does not leave the history read in part (a stopped one's does)."""
    fhir_server.includes = False
    request = _fetched_by_reference(fhir_server, reference="Medication/tizanidine-2")
    next(r for r in fhir_server.resources if "medicationReference" in r)["status"] = status
    fhir_server.fail_for.add("Medication")
    asked = status == "stopped"
    assert ("partial-history" in _post(client, request)) is asked
    assert len(fhir_server.searched("Medication?")) == asked


def test_the_medications_of_many_orders_are_asked_for_fifty_at_a_time(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """One search for each fifty ids keeps its URL short; the one that names tizanidine fires."""
    fhir_server.includes = False
    request = _fetched_by_reference(fhir_server, reference=f"{fhir_server.base}/Medication/tizanidine-2/_history/3")
    order = next(r for r in fhir_server.resources if "medicationReference" in r)
    for i in range(120):
        fhir_server.add({**order, "id": f"old-{i}", "medicationReference": {"reference": f"Medication/m{i}"}})
    assert "muscle-relaxant-duplicate" in _post(client, request)
    asked = [s.path.partition("_id=")[2].split("&")[0].split(",") for s in fhir_server.searched("Medication?")]
    assert sorted(len(ids) for ids in asked) == [21, 50, 50]  # asked at once, answered in any order
    assert sorted(i for ids in asked for i in ids) == sorted(["tizanidine-2", *(f"m{i}" for i in range(120))])


@pytest.mark.parametrize("failure", ["fails", "no-such-type"])
def test_medications_that_cannot_be_read_leave_the_history_read_in_part(
    client: TestClient, fhir_server: FhirTestServer, failure: str
) -> None:
    """The order stays unnamed, and the clinician is told the checks may be incomplete: the call
    is not failed for it, and the other cards stand."""
    fhir_server.includes = False
    request = _fetched_by_reference(fhir_server, reference="Medication/tizanidine-2")
    if failure == "fails":
        fhir_server.fail_for.add("Medication")
    else:
        fhir_server.unlisted.add("Medication")
    cards = _cards(client, request)
    assert [rule for rule, _, _ in cards][-1] == "partial-history"
    assert "muscle-relaxant-duplicate" not in [rule for rule, _, _ in cards]
    assert len(fhir_server.searched("Medication?")) == (1 if failure == "fails" else 0)
    assert 'cds_fhir_fetch_errors_total{key="medications"} 1.0' in client.get("/metrics").text


@pytest.mark.parametrize(
    "refusal", ["Include '{}' is not supported", 'HAPI-1234: Invalid _include parameter value: "{}"']
)
def test_a_server_refusing_the_include_it_lists_is_asked_again_without_it(
    client: TestClient, fhir_server: FhirTestServer, refusal: str
) -> None:
    """Its refusal ("Include … is not supported") was read as "no such resource type": the
    medications came back empty, with no card and no notice; a HAPI-style one (a parameter it
    does not take: a failed search) failed the call."""
    coded = fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json")
    request = copy.deepcopy(coded)
    fhir_server.add(*(entry["resource"] for entry in request["prefetch"].pop("medications")["entry"]))
    fhir_server.refuse_include, fhir_server.include_refusal = True, refusal
    request["fhirServer"] = fhir_server.base
    assert _cards(client, request) == _cards(client, coded)
    assert ["_include" in s.path for s in fhir_server.searched("MedicationRequest")] == [True, False]
    _cards(client, request)  # not asked again with it while the server's facts are remembered
    assert ["_include" in s.path for s in fhir_server.searched("MedicationRequest")] == [True, False, False]


def test_a_medication_with_words_of_its_own_is_read_by_them_not_the_display(client: TestClient) -> None:
    """The Medication is the record and the display a label: a lisinopril Medication referenced
    with a stale display "tizanidine" was read as tizanidine, and a duplicate-therapy card fired."""
    request = copy.deepcopy(fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json"))
    entries = request["prefetch"]["medications"]["entry"]
    _by_reference(entries[0]["resource"], "Medication/m1")
    entries[0]["resource"]["medicationReference"]["display"] = "tizanidine 2 MG Oral Tablet"
    entries.append({"resource": _medication("m1", "314076", "lisinopril 10 MG Oral Tablet")})
    assert "muscle-relaxant-duplicate" not in _post(client, request)


@pytest.mark.parametrize("slow", [False, True], ids=["answered", "too-slow"])
def test_a_medication_the_ehrs_prefetch_left_out_is_read_from_its_fhir_server(
    client: TestClient, fhir_server: FhirTestServer, slow: bool
) -> None:
    """The EHR sent the history, the order naming its drug only by ``Medication/x`` and the
    Medication not beside it: with a ``fhirServer`` to ask, it is read by its id. A server too
    slow for the call's deadline leaves the history read in part, said, not a 412."""
    coded = fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json")
    request = copy.deepcopy(coded)
    _by_reference(request["prefetch"]["medications"]["entry"][0]["resource"], "Medication/tizanidine-2")
    fhir_server.add(_medication("tizanidine-2", "313412", "tizanidine 2 MG Oral Tablet"))
    fhir_server.delay = 1.5 if slow else 0.0  # the test settings' deadline is 1 s
    request["fhirServer"] = fhir_server.base
    if slow:
        rules = [rule for rule, _, _ in _cards(client, request)]
        assert "muscle-relaxant-duplicate" not in rules and rules[-1] == "partial-history"
    else:
        assert _cards(client, request) == _cards(client, coded)
        assert [s.path for s in fhir_server.searched("Medication?")] == ["/fhir/Medication?_id=tizanidine-2&_count=50"]
    assert fhir_server.searched("MedicationRequest") == []  # the EHR's history is not asked again


def test_a_medication_whose_id_is_longer_than_fhirs_64_is_read_from_its_fhir_server(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """Epic's Medication ids run past FHIR's 64 characters (66 in its sandbox's data), and ids
    are read up to 255 everywhere else: a history order naming its drug by one had the drug
    unasked for, its interactions unchecked."""
    coded = fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json")
    request = copy.deepcopy(coded)
    long_id = "eTz." + "a1B2-" * 13  # 69 characters of FHIR's id alphabet
    _by_reference(request["prefetch"]["medications"]["entry"][0]["resource"], f"Medication/{long_id}")
    fhir_server.add(_medication(long_id, "313412", "tizanidine 2 MG Oral Tablet"))
    request["fhirServer"] = fhir_server.base
    assert _cards(client, request) == _cards(client, coded)
    assert [s.path for s in fhir_server.searched("Medication?")] == [f"/fhir/Medication?_id={long_id}&_count=50"]


FLEXERIL = ("flexeril-10", "828348", "cyclobenzaprine hydrochloride 10 MG Oral Tablet")


@pytest.mark.parametrize("server", ["answers", "fails", "too-slow"])
def test_a_drafts_medication_the_request_lacks_is_read_from_its_fhir_server(
    client: TestClient, fhir_server: FhirTestServer, server: str
) -> None:
    """A draft naming its drug only by ``Medication/x``, the Medication neither in the draft
    Bundle nor in the prefetch: it named no drug and got no card at all. Read by its id, it gets
    its coded twin's cards; a server that cannot say leaves the draft unnamed and unchecked, and
    the call is answered (200) with a notice saying so, not failed."""
    coded = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request = copy.deepcopy(coded)
    _by_reference(request["context"]["draftOrders"]["entry"][0]["resource"], "Medication/flexeril-10")
    request["fhirServer"] = fhir_server.base
    fhir_server.add(_medication(*FLEXERIL))
    if server == "fails":
        fhir_server.fail_for.add("Medication")
    fhir_server.delay = 1.5 if server == "too-slow" else 0.0  # the test settings' deadline is 1 s
    cards = _cards(client, request)
    assert (cards == _cards(client, coded)) is (server == "answers")
    assert cards == [NOT_CHECKED] or server == "answers"
    failures = 'cds_fhir_fetch_errors_total{key="draftOrders"} 1.0'
    assert (failures in client.get("/metrics").text) is (server != "answers")
    if server != "too-slow":  # there the server's /metadata is not read in time
        assert [s.path for s in fhir_server.searched("Medication?")] == ["/fhir/Medication?_id=flexeril-10&_count=50"]


@pytest.mark.parametrize(
    "reference",
    [
        {"reference": "#m1"},  # no such contained resource
        {"reference": "https://elsewhere.example.org/fhir/Medication/flexeril-10"},  # another server's
        {"reference": "urn:uuid:0f3c1e2a-6d55-4d1e-9a57-2b8f0c1d9e4b"},  # no entry of the Bundle
        {"reference": "medication/flexeril-10"},  # references are case-sensitive
        {"identifier": {"system": "urn:oid:2.16.840.1.113883.6.69", "value": "0591-5658-01"}},
        {"reference": "Medication/flexeril-10", "display": " "},  # a display of blanks names nothing
    ],
    ids=["contained", "another-server", "urn", "lower-case", "identifier", "blank-display"],
)
def test_a_draft_whose_reference_leads_to_no_drug_is_said_not_checked(
    client: TestClient, reference: dict[str, Any]
) -> None:
    """Each leads to no Medication the service could read: the draft named no drug, and the
    answer was silent. With a display, the display names the drug."""
    request = copy.deepcopy(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    del order["medicationCodeableConcept"]
    order["medicationReference"] = reference
    assert _cards(client, request) == [NOT_CHECKED]
    reference["display"] = "cyclobenzaprine hydrochloride 10 MG Oral Tablet"
    assert "cyclobenzaprine-duration" in _post(client, request)


@pytest.mark.parametrize(
    "draft", ["no-drug-yet", "blank-reference", "blank-display", "type-only", "hash-only", "not-selected"]
)
def test_a_draft_with_no_drug_chosen_or_not_under_review_is_not_said_not_checked(
    client: TestClient, draft: str
) -> None:
    """The sandbox's Rx View opens on a draft with no drug chosen: nothing to check yet, and a
    client may fill in blanks meanwhile. A draft leading nowhere that order-select did not select
    is not under review: its notice would be about an order no card is for."""
    coded = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request = _with_a_draft_by_reference(coded)
    drafts = request["context"]["draftOrders"]["entry"]
    blanks = {"blank-reference": {"reference": " "}, "blank-display": {"display": ""}}
    blanks |= {"type-only": {"reference": "Medication/"}, "hash-only": {"reference": "#"}}
    if draft == "no-drug-yet":
        del drafts[1]["resource"]["medicationReference"]
    elif draft in blanks:
        drafts[1]["resource"]["medicationReference"] = blanks[draft]
    else:
        request["context"]["selections"].remove("MedicationRequest/by-reference")
    del request["fhirServer"]
    del coded["fhirServer"]
    assert _cards(client, request) == _cards(client, coded)


def test_a_drafts_medication_the_server_does_not_have_is_said_not_checked(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """The server answered, without the Medication: the draft named no drug and was silent, while
    a drug it did return is read and checked, in the same search."""
    coded = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request = _with_a_draft_by_reference(coded)
    _by_reference(request["context"]["draftOrders"]["entry"][0]["resource"], "Medication/not-there")
    request["fhirServer"] = fhir_server.base
    fhir_server.add(_medication(*FLEXERIL))
    assert _cards(client, request) == [*_cards(client, coded), NOT_CHECKED]
    searched = [s.path for s in fhir_server.searched("Medication?")]
    assert searched == ["/fhir/Medication?_id=not-there,flexeril-10&_count=50"]
    notice = client.post(SELECT, json=request).json()["cards"][-1]
    assert (
        "**draft order 1 of 2** (the medication record it points to names no drug or could not be retrieved)"
        in notice["detail"]
    )


def test_a_drafts_medication_whose_display_is_blank_is_asked_for(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """A display of blanks names no drug: the Medication was not asked for, as if it had."""
    coded = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request = copy.deepcopy(coded)
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    _by_reference(order, "Medication/flexeril-10")
    order["medicationReference"]["display"] = "  "
    request["fhirServer"] = fhir_server.base
    fhir_server.add(_medication(*FLEXERIL))
    assert _cards(client, request) == _cards(client, coded)


@pytest.mark.parametrize("where", ["display", "draftOrders", "prefetch"])
def test_a_drafts_medication_is_not_asked_for_where_the_request_names_the_drug(
    client: TestClient, fhir_server: FhirTestServer, where: str
) -> None:
    request = copy.deepcopy(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    _by_reference(order, "Medication/flexeril-10")
    if where == "display":
        order["medicationReference"]["display"] = FLEXERIL[2]
    else:
        target = request["context"]["draftOrders"] if where == "draftOrders" else request["prefetch"]["medications"]
        target.setdefault("entry", []).append({"resource": _medication(*FLEXERIL)})
    request["fhirServer"] = fhir_server.base
    assert "cyclobenzaprine-duration" in _post(client, request)
    assert fhir_server.searched("Medication") == []


def _with_a_draft_by_reference(coded: dict[str, Any]) -> dict[str, Any]:
    """The coded request with a second draft under review, its copy naming the drug only by
    ``Medication/flexeril-10``."""
    request = copy.deepcopy(coded)
    drafts = request["context"]["draftOrders"]["entry"]
    other = copy.deepcopy(drafts[0]["resource"])
    other["id"] = "by-reference"
    _by_reference(other, "Medication/flexeril-10")
    drafts.append({"resource": other})
    request["context"]["selections"].append("MedicationRequest/by-reference")
    return request


def test_a_slow_drafts_medication_leaves_the_others_drafts_cards_and_the_history_its_deadline(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """One draft coded, one naming its drug only by a Medication the server is slow to give:
    the history was read only after the draft's Medication gave up, with no time left, and the
    call was a 412 where it had been the coded draft's cards."""
    coded = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request = _with_a_draft_by_reference(coded)
    medications = request["prefetch"].pop("medications")
    fhir_server.add(*(entry["resource"] for entry in medications.get("entry", [])))
    fhir_server.delay, fhir_server.slow = 1.5, {"Medication"}  # the test settings' deadline is 1 s
    request["fhirServer"] = fhir_server.base
    cards = _cards(client, request)
    assert cards[:-1] == _cards(client, coded) and cards[-1][0] == "draft-not-checked"
    assert fhir_server.searched("MedicationRequest")


@pytest.mark.parametrize("where", ["prefetch", "server"])
def test_a_medication_whose_id_is_no_string_is_not_a_500(
    client: TestClient, fhir_server: FhirTestServer, where: str
) -> None:
    fhir_server.includes = False
    request = _fetched_by_reference(fhir_server, reference="Medication/tizanidine-2")
    odd = {"resourceType": "Medication", "id": ["tizanidine-2"]}
    if where == "prefetch":
        request["prefetch"]["medications"] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in fhir_server.resources if "medicationReference" in r]
            + [{"resource": odd}],
        }
    else:  # the server answers the search for tizanidine-2 with it
        fhir_server.canned["Medication"] = (
            200,
            {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": odd}]},
        )
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    # In the prefetch it holds no id: the server's Medication, of a string id, is read instead.
    # From the server it is no answer to the search: the order names no drug, and the answer says
    # the history was read in part (it said nothing).
    assert ("muscle-relaxant-duplicate" in rule_ids(response.json())) is (where == "prefetch")
    assert ("partial-history" in rule_ids(response.json())) is (where == "server")


def test_a_medication_search_cut_off_by_the_page_limit_leaves_the_history_read_in_part(
    make_client: Callable[..., TestClient], fhir_server: FhirTestServer
) -> None:
    """The Medications beyond the pages read were lost with no word: the cards now say so. The
    orders' own search is read whole (one page); only the Medications' is cut off."""
    fhir_server.includes, fhir_server.page_sizes = False, {"Medication": 5}
    request = _fetched_by_reference(fhir_server, reference="Medication/tizanidine-2")
    order = next(r for r in fhir_server.resources if "medicationReference" in r)
    for i in range(20):
        fhir_server.add({**order, "id": f"old-{i}", "medicationReference": {"reference": f"Medication/m{i}"}})
        fhir_server.add(_medication(f"m{i}", "197378", "baclofen 10 MG Oral Tablet"))
    cards = make_client(fhir_max_pages=2).post(SELECT, json=request).json()["cards"]
    assert cards[-1]["source"]["topic"]["code"] == "partial-history"
    assert "medication history" in cards[-1]["detail"]
    assert len(fhir_server.searched("MedicationRequest")) == 1 and len(fhir_server.searched("Medication?")) == 2


@pytest.mark.parametrize("id_", ["a,b", "a&_id=b", "a b", "x" * 256])
def test_an_id_no_fhir_id_could_be_is_not_asked_for(client: TestClient, fhir_server: FhirTestServer, id_: str) -> None:
    """It would change the search (a second id, a parameter of the caller's choosing)."""
    fhir_server.includes = False
    request = _fetched_by_reference(fhir_server, reference=f"Medication/{id_}")
    assert client.post(SELECT, json=request).status_code == 200
    assert fhir_server.searched("Medication?") == []


@pytest.mark.parametrize(
    "reference",
    ["urn:uuid:0f3c1e2a-6d55-4d1e-9a57-2b8f0c1d9e4b", "//elsewhere.example.org/fhir/Medication/tizanidine-2"],
)
def test_a_reference_to_no_server_or_another_is_not_asked_of_this_one(
    client: TestClient, fhir_server: FhirTestServer, reference: str
) -> None:
    fhir_server.includes = False
    request = _fetched_by_reference(fhir_server, reference=reference)
    assert "muscle-relaxant-duplicate" not in _post(client, request)
    assert fhir_server.searched("Medication?") == []


@pytest.mark.parametrize("version", ["STU3", "DSTU2"])
def test_an_older_servers_medication_is_asked_for_by_id_too(
    client: TestClient, fhir_server: FhirTestServer, version: str
) -> None:
    fhir_server.includes, fhir_server.version = False, version
    request = _fetched_by_reference(fhir_server, reference="Medication/tizanidine-2")
    assert "muscle-relaxant-duplicate" in _post(client, request)
    assert [s.path for s in fhir_server.searched("Medication?")] == ["/fhir/Medication?_id=tizanidine-2&_count=50"]


def test_a_history_read_for_no_rule_is_dropped_without_a_word(
    client: TestClient, fhir_server: FhirTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The draft's Medication names a drug no rule reads: the history read meanwhile is dropped,
    and its failing fetch was left running and logged as "Task exception was never retrieved"."""
    request = copy.deepcopy(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    _by_reference(request["context"]["draftOrders"]["entry"][0]["resource"], "Medication/lisinopril-10")
    del request["prefetch"]["conditions"]
    fhir_server.add(_medication("lisinopril-10", "314076", "lisinopril 10 MG Oral Tablet"))
    fhir_server.fail_for.add("Condition")
    request["fhirServer"] = fhir_server.base
    assert _cards(client, request) == []
    client.get("/healthz")  # a turn of the app's loop, then the collector, for the dropped tasks
    gc.collect()
    assert "never retrieved" not in caplog.text


def test_a_draft_not_checked_and_a_history_read_in_part_are_one_notice_within_the_card_limit(
    make_client: Callable[..., TestClient], fhir_server: FhirTestServer
) -> None:
    """Another patient's data, a history read in part and a draft not checked were three notices,
    and with the card that counts the rest more cards than CDS_MAX_CARDS allowed: the draft's is
    said in the history's notice when both come."""
    request = _with_a_draft_by_reference(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    conditions = request["prefetch"]["conditions"]
    conditions["entry"] = [
        {"resource": {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/x"}}}
    ]
    conditions["link"] = [{"relation": "next", "url": f"{fhir_server.base}/Condition?patient=x&_page=1"}]
    fhir_server.fail_for.add("Medication")
    request["fhirServer"] = fhir_server.base
    cards = make_client(max_cards=4, fhir_max_pages=1).post(SELECT, json=request).json()["cards"]
    codes = [card["source"]["topic"]["code"] for card in cards]
    assert codes == ["cyclobenzaprine-duration", "other-patient-data", "partial-history"]
    assert cards[-1]["summary"].startswith(
        "A draft order was not checked (drug not identified) and the patient's history was not read in full"
    )
    assert "no check ran on that order" in cards[-1]["detail"] and "conditions" in cards[-1]["detail"]


def test_a_draft_not_checked_and_a_patient_record_not_read_are_one_notice_that_says_both(
    client: TestClient,
) -> None:
    """The summary said "the patient's history were not read in full" where the history was read
    and the patient record was not."""
    request = _with_a_draft_by_reference(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    del request["prefetch"]["patient"]
    request["fhirServer"] = "http://127.0.0.1:9/fhir"  # nothing listens: neither is read
    cards = client.post(SELECT, json=request).json()["cards"]
    assert cards[-1]["source"]["topic"]["code"] == "partial-history"
    summary = "A draft order was not checked (drug not identified) and the patient record could not be read"
    assert cards[-1]["summary"].startswith(summary)


def test_a_draft_whose_medication_the_service_may_not_ask_for_is_said_not_checked(client: TestClient) -> None:
    """A fhirServer off the service's list: the draft's drug cannot be read, as when the server
    fails, and the answer said nothing."""
    request = copy.deepcopy(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    _by_reference(request["context"]["draftOrders"]["entry"][0]["resource"], "Medication/flexeril-10")
    request["fhirServer"] = "https://not-listed.example.org/fhir"
    assert [code for code, _, _ in _cards(client, request)] == ["draft-not-checked"]


def test_a_fhir_server_the_service_cannot_read_is_not_repeated_in_the_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Python's URL parser says what it refused ("…cast to integer value as 'pt-4471'"), and a
    caller may build a URL from the patient's id: the log said it."""
    request = copy.deepcopy(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    _by_reference(request["context"]["draftOrders"]["entry"][0]["resource"], "Medication/flexeril-10")
    request["fhirServer"] = "https://ehr.example.org:pt-4471/fhir"
    assert [code for code, _, _ in _cards(client, request)] == ["draft-not-checked"]
    assert "fhirServer" in caplog.text and "pt-4471" not in caplog.text


def test_a_server_failing_the_included_search_is_not_taken_to_refuse_the_include(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """A 5xx (or a reset, a timeout) says nothing of ``_include``: it was read as a refusal, the
    search sent again without it (past the deadline, when a timeout) and the server remembered
    for an hour as one that refuses it (a code review). The key fails, as any failed search does."""
    coded = fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json")
    request = copy.deepcopy(coded)
    fhir_server.add(*(entry["resource"] for entry in request["prefetch"].pop("medications")["entry"]))
    request["fhirServer"] = fhir_server.base
    fhir_server.fail_for.add("MedicationRequest")
    assert client.post(SELECT, json=request).status_code == 412
    assert ["_include" in s.path for s in fhir_server.searched("MedicationRequest")] == [True]
    fhir_server.fail_for.discard("MedicationRequest")
    assert _cards(client, request) == _cards(client, coded)  # answered, the include still asked
    assert ["_include" in s.path for s in fhir_server.searched("MedicationRequest")] == [True, True]
