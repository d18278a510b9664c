"""Hook and feedback requests: arbitrary JSON and bytes to every route, and valid-but-arbitrary FHIR
built from the shipped terminology, whose cards must be well formed."""

from __future__ import annotations

import csv
import json
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import TODAY, hook_url
from tests.fuzz.conftest import (
    FUZZ,
    ROUTES,
    RULE_IDS,
    assert_no_server_error,
    json_values,
)

# The documented notices (README, docs/integrating.md): not rules, of a topic system of their own.
NOTICES = {"card-limit", "other-patient-data", "partial-history"}
TERMINOLOGY = Path(__file__).resolve().parents[2] / "cards" / "terminology"


# Arbitrary values placed where the service looks, so the fuzz reaches past the envelope.
envelopes = st.fixed_dictionaries(
    {"hook": st.sampled_from(["order-select", "order-sign"]) | json_values, "hookInstance": st.text(min_size=1)},
    optional={
        "context": st.fixed_dictionaries(
            {"patientId": st.text(min_size=1, max_size=20) | json_values},
            optional={"selections": json_values, "draftOrders": json_values},
        ),
        "prefetch": st.dictionaries(st.sampled_from(["patient", "conditions", "medications", "imaging"]), json_values),
        "fhirServer": json_values,
        "fhirAuthorization": json_values,
    },
)


@FUZZ
@given(body=json_values | envelopes, route=st.sampled_from(ROUTES))
def test_arbitrary_json_never_gets_a_5xx(client: TestClient, body: Any, route: str) -> None:
    assert_no_server_error(client.post(route, json=body))


@FUZZ
@given(raw=st.binary(max_size=200), route=st.sampled_from(ROUTES))
def test_arbitrary_bytes_never_get_a_5xx(client: TestClient, raw: bytes, route: str) -> None:
    assert_no_server_error(client.post(route, content=raw, headers={"Content-Type": "application/json"}))


def _products() -> list[tuple[str, str]]:
    with (TERMINOLOGY / "rxnorm-products.tsv").open() as handle:
        rows = csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t")
        return [(row["rxcui"], row["name"]) for row in rows if row["kind"] == "prescribable"]


def _condition_codes() -> list[tuple[str, str]]:
    """Codes the condition concepts list (codes, prefixes, exclusions) in every concepts file."""
    files = [TERMINOLOGY / "concepts.toml", *sorted((TERMINOLOGY / "concepts").glob("*.toml"))]
    codes = [
        (c["system"], c["code"])
        for path in files
        for concept in tomllib.loads(path.read_text()).get("condition", {}).values()
        for key in ("codes", "prefixes", "exclude")
        for c in concept.get(key, [])
    ]
    for path in sorted((TERMINOLOGY / "valuesets").glob("*.json")):
        contains = json.loads(path.read_text())["expansion"]["contains"]
        codes += [(c["system"], c["code"]) for c in contains if "rxnorm" not in c["system"]][:15]
    return codes


PRODUCTS = _products()
CONDITION_CODES = _condition_codes()
PROCEDURES = [
    ("http://www.ama-assn.org/go/cpt", "72148"),
    ("http://www.ama-assn.org/go/cpt", "97012"),
    ("http://www.ama-assn.org/go/cpt", "97014"),
    ("https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "E0720"),
    ("https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "L0631"),
    ("http://www.ama-assn.org/go/cpt", "97110"),
]
days_ago = st.integers(min_value=-30, max_value=900).map(lambda n: (TODAY - timedelta(days=n)).isoformat())


@st.composite
def medication_requests(draw: st.DrawFn, ident: str, *, draft: bool) -> dict[str, Any]:
    rxcui, name = draw(st.sampled_from(PRODUCTS))
    medication: dict[str, Any] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxcui, "display": name}]
    }
    if draw(st.booleans()):
        medication["text"] = name
    dose = {
        "value": draw(st.sampled_from([0.5, 1, 2, 5, 7.5, 10, 15, 30])),
        "unit": draw(st.sampled_from(["mg", "tablet", "{tbl}", "capsule"])),
    }
    repeat: dict[str, Any] = {
        "frequency": draw(st.integers(1, 6)),
        "period": draw(st.sampled_from([1, 8, 12, 24])),
        "periodUnit": draw(st.sampled_from(["d", "h"])),
    }
    if draw(st.booleans()):
        repeat["boundsDuration"] = {"value": draw(st.integers(1, 120)), "unit": "d", "code": "d"}
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": ident,
        "status": "draft" if draft else draw(st.sampled_from(["active", "completed", "stopped", "entered-in-error"])),
        "intent": "order",
        "subject": {"reference": "Patient/fuzz-patient"},
        "authoredOn": TODAY.isoformat() if draft else draw(days_ago),
        "medicationCodeableConcept": medication,
        "dosageInstruction": [{"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": dose}]}],
    }
    if draw(st.booleans()):
        resource["dispenseRequest"] = {
            "expectedSupplyDuration": {"value": draw(st.integers(1, 90)), "unit": "days", "code": "d"},
            "numberOfRepeatsAllowed": draw(st.integers(0, 5)),
        }
    return resource


@st.composite
def service_requests(draw: st.DrawFn, ident: str, *, draft: bool) -> dict[str, Any]:
    system, code = draw(st.sampled_from(PROCEDURES))
    return {
        "resourceType": "ServiceRequest",
        "id": ident,
        "status": "draft" if draft else draw(st.sampled_from(["active", "completed", "revoked"])),
        "intent": "order",
        "subject": {"reference": "Patient/fuzz-patient"},
        "authoredOn": TODAY.isoformat() if draft else draw(days_ago),
        "code": {"coding": [{"system": system, "code": code}]},
    }


@st.composite
def conditions(draw: st.DrawFn, ident: str) -> dict[str, Any]:
    system, code = draw(st.sampled_from(CONDITION_CODES))
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": ident,
        "subject": {"reference": "Patient/fuzz-patient"},
        "code": {"coding": [{"system": system, "code": code}]},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": draw(st.sampled_from(["active", "recurrence", "resolved", "inactive"])),
                }
            ]
        },
    }
    if draw(st.booleans()):
        resource["onsetDateTime"] = draw(days_ago)
    return resource


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


@st.composite
def hook_requests(draw: st.DrawFn) -> dict[str, Any]:
    hook = draw(st.sampled_from(["order-select", "order-sign"]))
    drafts = [draw(medication_requests(f"draft-{i}", draft=True)) for i in range(draw(st.integers(1, 3)))]
    if draw(st.booleans()):
        drafts.append(draw(service_requests("draft-sr", draft=True)))
    birth = date(draw(st.integers(1925, 2008)), draw(st.integers(1, 12)), draw(st.integers(1, 28)))
    context: dict[str, Any] = {"patientId": "fuzz-patient", "draftOrders": {"resourceType": "Bundle", "entry": []}}
    context["draftOrders"]["entry"] = [{"resource": r} for r in drafts]
    if hook == "order-select":
        context["selections"] = [f"{drafts[0]['resourceType']}/{drafts[0]['id']}"]
    return {
        "hook": hook,
        "hookInstance": "fuzz",
        "context": context,
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "fuzz-patient", "birthDate": birth.isoformat()},
            "conditions": bundle([draw(conditions(f"c{i}")) for i in range(draw(st.integers(0, 6)))]),
            "medications": bundle(
                [draw(medication_requests(f"m{i}", draft=False)) for i in range(draw(st.integers(0, 5)))]
            ),
            "imaging": bundle([draw(service_requests(f"s{i}", draft=False)) for i in range(draw(st.integers(0, 2)))]),
        },
    }


def cards_for(client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    """The cards of a hook request that must be answered 200, whatever its content."""
    response = client.post(hook_url(request), json=request)
    assert response.status_code == 200, response.text
    return response.json()["cards"]


@FUZZ
@given(request=hook_requests())
def test_valid_fhir_gets_well_formed_cards(client: TestClient, request: dict[str, Any]) -> None:
    cards = cards_for(client, request)
    drafts = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in request["context"]["draftOrders"]["entry"]
    }
    uuids = [card["uuid"] for card in cards]
    assert len(set(uuids)) == len(uuids)
    for card in cards:
        assert card["source"]["topic"]["code"] in RULE_IDS
        assert len(card["summary"]) <= 140
        assert card["indicator"] in {"info", "warning", "critical"}
        assert card["source"]["label"]
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                if action["type"] == "delete":
                    assert action["resourceId"] in drafts
                else:
                    resource = action["resource"]
                    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def _members(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) below ``value``, at any depth, but the resource's type."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    found = []
    for key, child in items:
        if key != "resourceType":
            found += [(value, key), *_members(child)]
    return found


@st.composite
def corrupted_history(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request whose history has a few members, at any depth, replaced by arbitrary JSON:
    the history is read field by field without validation, so every field must be type-checked."""
    request = draw(hook_requests())
    prefetch = request["prefetch"]
    resources = [prefetch["patient"]] + [
        entry["resource"] for key in ("conditions", "medications", "imaging") for entry in prefetch[key]["entry"]
    ]
    for _ in range(draw(st.integers(1, 6))):
        container, key = draw(st.sampled_from(_members(draw(st.sampled_from(resources)))))
        container[key] = draw(json_values)
    return request


@FUZZ
@given(request=corrupted_history())
def test_wrongly_typed_history_is_read_around_not_a_5xx(client: TestClient, request: dict[str, Any]) -> None:
    """Every card a rule's, or a notice (a corrupted subject may name another patient)."""
    for card in cards_for(client, request):
        topic = card["source"]["topic"]
        assert topic["code"] in (RULE_IDS if topic["system"] == "urn:back-spasm-cds:rule" else NOTICES), topic
