"""Property-based and schema-driven fuzzing: whatever arrives, the answer is never a 5xx.

Three generators, each bounded by ``FUZZ_EXAMPLES`` (examples per test; ``make fuzz`` raises it
and draws new examples on every run, where ``make test`` replays the same ones):

- arbitrary JSON, posted to every route;
- valid-but-arbitrary FHIR: hook requests built from the shipped terminology (drugs, doses,
  timings, conditions, history, imaging) that must come back 200 with well-formed cards;
- schemathesis, from the service's own OpenAPI document, with schema-valid and
  schema-violating requests, with authentication off and required.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import tomllib
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from cds_service.app import create_app
from cds_service.rules import all_rules
from cds_service.settings import Settings
from tests.conftest import NOON, SELECT, SIGN, TODAY, Clock
from tests.tokens import ISSUER, SigningKey, claims, jwks

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    # `make test` replays the same examples every run; `make fuzz` (FUZZ_EXAMPLES set) explores.
    derandomize="FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)
TERMINOLOGY = Path(__file__).resolve().parent.parent / "cards" / "terminology"
RULE_IDS = {rule.id for rule in all_rules()}
ROUTES = [SELECT, SIGN, SELECT + "/feedback", SIGN + "/feedback"]


def _app(**overrides: Any) -> Any:
    data_dir = Path(tempfile.mkdtemp(prefix="cds-fuzz-"))
    return create_app(Settings(**{"data_dir": data_dir, "auth_mode": "off", **overrides}), clock=Clock(NOON))


@pytest.fixture(scope="module")
def client() -> Any:
    with TestClient(_app()) as client:
        yield client


def assert_no_server_error(response: Any) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code >= 400:
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["diagnostics"]


# --- arbitrary JSON ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=40,
)
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


# --- valid FHIR, arbitrary clinical content ---------------------------------------------------


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
    response = client.post(SELECT if request["hook"] == "order-select" else SIGN, json=request)
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
    assert all(card["source"]["topic"]["code"] in RULE_IDS for card in cards_for(client, request))


# --- schemathesis, from the OpenAPI document --------------------------------------------------


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


OPEN_APP = _app()
KEY = SigningKey.generate("ES384")
_trusted = Path(tempfile.mkdtemp(prefix="cds-fuzz-")) / "trusted-clients.json"
_trusted.write_text(json.dumps([{"iss": ISSUER, "jwks": jwks(KEY)}]))
SECURE_APP = _app(auth_mode="required", trusted_clients_file=_trusted, public_url=["http://testserver"])


def _run(operation: Any, mode: GenerationMode, sign: Callable[[Any], None] | None = None) -> list[int]:
    statuses: list[int] = []

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        if sign is not None:
            sign(case)
        statuses.append(case.call_and_validate().status_code)

    check()
    return statuses


@pytest.mark.parametrize(
    ("operation", "mode"),
    [
        pytest.param(operation, mode, id=f"{operation.label} {mode.value}")
        for operation in _operations(OPEN_APP)
        # Discovery takes no input, so it has no schema-violating variant.
        for mode in (list(GenerationMode) if operation.method.upper() == "POST" else [GenerationMode.POSITIVE])
    ],
)
def test_schemathesis_with_auth_off(operation: Any, mode: GenerationMode) -> None:
    _run(operation, mode)


@pytest.mark.parametrize("operation", _operations(SECURE_APP), ids=lambda o: o.label)
def test_schemathesis_with_auth_required(operation: Any) -> None:
    """Each case carries a fresh token for the URL it calls; schemathesis also tries it without."""

    def sign(case: Any) -> None:
        token = KEY.sign(claims(f"http://testserver{case.formatted_path}", NOON))
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    statuses = _run(operation, GenerationMode.POSITIVE, sign)
    assert statuses
    assert 401 not in statuses  # every signed case got past authentication


# --- client JWTs: header and claim types and sizes (issue 16 #6) ------------------------------

_numbers = st.integers() | st.floats() | st.sampled_from([10**400, -(10**400), int(NOON), int(NOON) + 60])
_token_values = json_values | _numbers | st.text(min_size=200, max_size=2000)


@st.composite
def client_tokens(draw: st.DrawFn) -> str:
    """Tokens signed by the trusted key (so every check runs) with some header fields and claims
    replaced by arbitrary JSON: lists, objects, null, huge and non-finite numbers, long strings."""
    import jwt

    from tests.tokens import b64

    header: dict[str, Any] = {"alg": "ES384", "typ": "JWT", "kid": KEY.kid}
    payload = claims(f"http://testserver{SELECT}", NOON)
    for name in draw(st.sets(st.sampled_from(["alg", "typ", "kid", "jku", "crit", "x5u"]))):
        header[name] = draw(_token_values)
    for name in draw(st.sets(st.sampled_from(["iss", "aud", "exp", "iat", "nbf", "jti", "tenant"]), min_size=1)):
        payload[name] = draw(_token_values)
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = jwt.algorithms.get_default_algorithms()["ES384"].sign(signing_input.encode(), KEY.private)
    return f"{signing_input}.{b64(signature)}"


@FUZZ
@given(token=client_tokens())
def test_arbitrary_jwt_headers_and_claims_never_get_a_5xx(token: str) -> None:
    with TestClient(SECURE_APP) as client:
        response = client.post(SELECT, json={"hook": "order-select"}, headers={"Authorization": f"Bearer {token}"})
    assert_no_server_error(response)


# --- analytics query parameters (issue 16 #6) -------------------------------------------------

# Dates anywhere Python can hold them (years 1 to 9999, where the period arithmetic overflowed),
# spelled every way ``date.fromisoformat`` reads, or any text at all.
_days = st.dates().map(date.isoformat) | st.dates().map(lambda d: d.strftime("%Y%m%d"))
_query_values = st.none() | _days | st.text(max_size=40) | st.sampled_from(["", "0001-01-01", "9999-12-31"])


@FUZZ
@given(
    path=st.sampled_from(["/analytics", "/analytics/report"]),
    start=_query_values,
    end=_query_values,
    period=st.none() | st.sampled_from(["day", "week", "month"]) | st.text(max_size=12),
)
def test_arbitrary_analytics_parameters_never_get_a_5xx(
    client: TestClient, path: str, start: str | None, end: str | None, period: str | None
) -> None:
    params = {name: value for name, value in (("from", start), ("to", end), ("period", period)) if value is not None}
    response = client.get(path, params=params)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        [issue] = response.json()["issue"]
        assert issue["expression"][0] in params
