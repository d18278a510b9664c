"""A ``resourceType`` that is no FHIR type, and a selection that cannot name a draft as sent.

"medicationrequest", "Medicationrequest", "MedicationRequest " and "MedicationRequest" with a
zero-width space are no FHIR types (FHIR's names are case-sensitive), and were read as a type the
service does not read: the draft, or the history's MAO inhibitor, passed over in silence, the
critical card lost with no word (an adversarial review). Each is now refused as an entry of no
resource is: a 400 naming where. A real type the service does not read (a NutritionOrder draft,
an Observation in the history) is passed over as before. A selection whose id a space or a
character that does not show pads, and that names no draft, is a 400 too: it answered no cards.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.fhir.resource_types import RESOURCE_TYPES
from tests.conftest import SELECT, SIGN, fixture, rule_ids

MAOI = "cyclobenzaprine-maoi/fires-phenelzine-active.json"
CRITICAL = "cyclobenzaprine-maoi"
NO_TYPES = ["medicationrequest", "Medicationrequest", "MedicationRequest ", "MedicationRequest\u200b", "Address"]


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def signed(draft_type: str) -> dict[str, Any]:
    """The phenelzine patient's 30-day relaxant as order-sign, its draft typed ``draft_type``."""
    request = fixture(MAOI)
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    request["context"]["draftOrders"]["entry"][0]["resource"]["resourceType"] = draft_type
    return request


def the_issue(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert issue["code"] == "invalid"
    return dict(issue)


@pytest.mark.parametrize("draft_type", NO_TYPES)
def test_an_order_sign_draft_of_no_fhir_type_is_400_naming_its_resource_type(
    client: TestClient, draft_type: str
) -> None:
    issue = the_issue(client.post(SIGN, json=signed(draft_type)))
    assert issue["expression"] == ["context.draftOrders"]
    assert issue["diagnostics"].startswith(
        "context.draftOrders: entry[0].resource.resourceType must be a FHIR resource"
    )
    assert "case-sensitive" in issue["diagnostics"]


def test_an_order_select_draft_of_no_fhir_type_is_400_too(client: TestClient) -> None:
    request = fixture(MAOI)
    request["context"]["draftOrders"]["entry"][0]["resource"]["resourceType"] = "medicationrequest"
    request["context"]["selections"] = ["MedicationRequest/request-123"]
    assert the_issue(client.post(SELECT, json=request))["expression"] == ["context.draftOrders"]


@pytest.mark.parametrize("draft_type", ["NutritionOrder", "VisionPrescription", "DeviceUseRequest"])
def test_a_draft_of_a_real_type_the_service_does_not_read_is_passed_over_as_before(
    client: TestClient, draft_type: str
) -> None:
    """CDS Hooks' order-sign carries any order: one of a type no rule reads gets no card, no 400
    (DeviceUseRequest is DSTU2's)."""
    response = client.post(SIGN, json=signed(draft_type))
    assert response.status_code == 200, response.text
    assert response.json()["cards"] == []


def test_the_draft_spelt_as_fhir_spells_it_gets_the_critical_card(client: TestClient) -> None:
    assert CRITICAL in rule_ids(client.post(SIGN, json=signed("MedicationRequest")).json())


def history_typed(entry_type: str) -> dict[str, Any]:
    """The phenelzine patient's order-select, the phenelzine in the history typed ``entry_type``."""
    request = fixture(MAOI)
    request["prefetch"]["medications"]["entry"][0]["resource"]["resourceType"] = entry_type
    return request


@pytest.mark.parametrize("entry_type", NO_TYPES)
def test_a_history_entry_of_no_fhir_type_is_400_naming_it(client: TestClient, entry_type: str) -> None:
    """As a history entry of no resource is (tests/test_prefetch_entries.py): the MAO inhibitor
    was read as no medication, its critical card lost with no word."""
    issue = the_issue(client.post(SELECT, json=history_typed(entry_type)))
    field = "prefetch.medications.entry[0].resource.resourceType"
    assert issue["expression"] == [field]
    assert issue["diagnostics"].startswith(f"{field}: must be a FHIR resource type")


def test_a_history_entry_of_a_real_type_the_key_does_not_search_is_passed_over_as_before(client: TestClient) -> None:
    response = client.post(SELECT, json=history_typed("Observation"))
    assert response.status_code == 200, response.text
    assert CRITICAL not in rule_ids(response.json())


def test_an_optional_keys_entry_of_no_fhir_type_reads_the_key_as_not_sent(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Prior imaging only sharpens a card: not the reason to lose the MAO inhibitor's."""
    request = fixture(MAOI)
    mri = {"resourceType": "imagingStudy", "id": "mri-1", "status": "available"}
    request["prefetch"]["imaging"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": mri}]}
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert CRITICAL in rule_ids(response.json())
    assert "prefetch.imaging.entry[0].resource.resourceType: not a FHIR resource" in caplog.text


def selecting(selection: str, draft_id: str = "request-123") -> dict[str, Any]:
    request = fixture(MAOI)
    request["context"]["draftOrders"]["entry"][0]["resource"]["id"] = draft_id
    request["context"]["selections"] = [selection]
    return request


@pytest.mark.parametrize(
    "selection",
    ["MedicationRequest/request-123 ", "MedicationRequest/ request-123", "MedicationRequest/request-123\u200b"],
)
def test_a_padded_selection_naming_no_draft_is_400_naming_the_item(client: TestClient, selection: str) -> None:
    """It answered no cards, only logged, the MAO inhibitor's critical card lost."""
    issue = the_issue(client.post(SELECT, json=selecting(selection)))
    assert issue["expression"] == ["context.selections"]
    assert issue["diagnostics"].startswith("context.selections: item 0 (")
    assert "names no draft order: its id begins or ends with a space" in issue["diagnostics"]


def test_a_padded_selection_of_a_draft_whose_id_is_as_padded_is_reviewed(client: TestClient) -> None:
    """A draft's id is checked no more strictly ("req 1" is reviewed at order-sign), and its
    selection names it: refused, the call's critical card would be lost."""
    response = client.post(SELECT, json=selecting("MedicationRequest/request-123 ", draft_id="request-123 "))
    assert response.status_code == 200, response.text
    assert CRITICAL in rule_ids(response.json())


@pytest.mark.parametrize("selection", ["Medicationrequest/request-123", "Prescription/request-123"])
def test_a_selection_of_no_fhir_type_is_400_naming_the_item(client: TestClient, selection: str) -> None:
    issue = the_issue(client.post(SELECT, json=selecting(selection)))
    assert issue["expression"] == ["context.selections"]
    assert issue["diagnostics"].startswith("context.selections: item 0 (")
    assert "names no FHIR resource type" in issue["diagnostics"]


def test_a_selection_naming_no_draft_is_still_no_card_and_no_400(client: TestClient) -> None:
    """The documented choice (docs/integrating.md): logged, not refused."""
    response = client.post(SELECT, json=selecting("MedicationRequest/another-order"))
    assert response.status_code == 200, response.text
    assert response.json()["cards"] == []


@pytest.mark.parametrize("package", ["fhir.resources.STU3", "fhir.resources.R4B"])
def test_every_resource_type_of_the_stu3_and_r4b_models_is_a_resource_type(package: str) -> None:
    """The names written out in ``fhir.resource_types`` hold every concrete resource the models
    know, and none of their other types (Address, CodeableConcept)."""
    resource = importlib.import_module(f"{package}.resource").Resource
    resources, others = set(), set()
    for name, model in _models(package):
        (resources if issubclass(model, resource) else others).add(name)
    assert len(resources) > 100
    abstract = {"Resource", "DomainResource", "MetadataResource"}
    assert resources - abstract <= RESOURCE_TYPES, sorted(resources - abstract - RESOURCE_TYPES)
    assert not others & RESOURCE_TYPES


def _models(package: str) -> list[tuple[str, type]]:
    """Each type the package's models name, with its model (primitive types have none)."""
    get_model = importlib.import_module(package).get_fhir_model_class
    found = []
    for name in importlib.import_module(f"{package}.fhirtypes").__all__:
        try:
            found.append((name.removesuffix("Type"), get_model(name.removesuffix("Type"))))
        except ValueError:
            continue
    return found


def _published(client: TestClient) -> tuple[re.Pattern[str], list[str]]:
    """The OpenAPI document's selection pattern and draft resourceType names, each a component."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    context = schemas["OrderSelectContext"]["properties"]
    selection = context["selections"]["anyOf"][0]["items"]["$ref"]
    entry = context["draftOrders"]["anyOf"][0]["properties"]["entry"]["anyOf"][0]["items"]
    draft_type = entry["properties"]["resource"]["properties"]["resourceType"]["$ref"]
    named = {ref: schemas[ref.rsplit("/", 1)[1]] for ref in (selection, draft_type)}
    return re.compile(named[selection]["pattern"]), named[draft_type]["enum"]


@pytest.mark.parametrize(
    "selection",
    [
        "MedicationRequest/request-123",
        "NutritionOrder/request 123",
        "MedicationRequest/request-123 ",
        "MedicationRequest/\u00a0request-123",
        "MedicationRequest/request\u00ad-123",
        "MedicationRequest/request-123\U000e0001",
        "Medicationrequest/request-123",
        "Prescription/request-123",
    ],
)
def test_the_published_selection_pattern_allows_what_the_service_takes_and_no_more(
    client: TestClient, selection: str
) -> None:
    """Schemathesis sent what the document allowed ("Jm/x", an id ending in a soft hyphen) and was
    refused: the pattern names the FHIR types, and an id no space or invisible character pads."""
    pattern, _ = _published(client)
    status = client.post(SELECT, json=selecting(selection)).status_code
    assert (status != 400) == bool(pattern.search(selection)), (selection, status)


@pytest.mark.parametrize("draft_type", [*NO_TYPES, "MedicationRequest", "NutritionOrder"])
def test_the_published_draft_resource_types_are_what_the_service_takes(client: TestClient, draft_type: str) -> None:
    _, names = _published(client)
    assert names == sorted(RESOURCE_TYPES)
    status = client.post(SIGN, json=signed(draft_type)).status_code
    assert (status != 400) == (draft_type in names), (draft_type, status)
