"""CDS Hooks 2.0 protocol: discovery, request validation, errors, CORS, JSON hygiene."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, SIGN, fixture
from tests.fhir_server import FhirTestServer


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def test_discovery_lists_one_service_per_hook_with_prefetch(client: TestClient) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = {s["hook"]: s for s in response.json()["services"]}
    assert set(services) == {"order-select", "order-sign"}
    assert services["order-select"]["id"] != services["order-sign"]["id"]
    for service in services.values():
        assert service["title"] and service["description"]
        assert service["prefetch"] == {
            "patient": "Patient/{{context.patientId}}",
            "conditions": "Condition?patient={{context.patientId}}",
            "medications": "MedicationRequest?patient={{context.patientId}}",
            "imaging": "ServiceRequest?patient={{context.patientId}}",
        }


def test_discovery_says_what_a_client_must_send(client: TestClient) -> None:
    """CDS Hooks 2.0 ``usageRequirements``: a call without the conditions and medications, nor a
    server to fetch them from, is a 412; an integrator reads why in discovery, before the first call."""
    for service in client.get("/cds-services").json()["services"]:
        usage = service["usageRequirements"]
        assert "conditions and medications" in usage and "412" in usage and "fhirServer" in usage
        # The patient and imaging keys only sharpen the checks: not asked for as if required.
        assert usage.startswith("Prefetch conditions and medications, or ") and "patient and imaging keys are" in usage


def _walk(value: Any, path: str = "$") -> list[str]:
    """Paths holding null or an empty string, array or object (spec §Use of JSON)."""
    if value is None or value in ("", [], {}):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _walk(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _walk(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize(
    "name",
    [
        "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json",
        "cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json",
        "refractory-spasm-imaging/fires-sciatica.json",
    ],
)
def test_responses_carry_no_null_or_empty_values(client: TestClient, name: str) -> None:
    body = client.post(SELECT, json=fixture(name)).json()
    assert body["cards"]
    assert _walk(body["cards"]) == []
    assert _walk(client.get("/cds-services").json()) == []


def _request(**changes: Any) -> dict[str, Any]:
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    for key, value in changes.items():
        if value is None:
            del request[key]
        else:
            request[key] = value
    return request


def assert_400(response: Any, *fields: str) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["severity"] == "error" and issue["code"] == "invalid"
    for field in fields:
        assert field in issue["diagnostics"], issue
        assert field in issue["expression"], issue
    return issue["diagnostics"]


def test_wrong_hook_is_400_naming_hook(client: TestClient) -> None:
    message = assert_400(client.post(SELECT, json=_request(hook="patient-view")), "hook")
    assert "order-select" in message


@pytest.mark.parametrize("field", ["hook", "hookInstance", "context"])
def test_missing_required_field_is_400_naming_it(client: TestClient, field: str) -> None:
    assert_400(client.post(SELECT, json=_request(**{field: None})), field)


def test_missing_patient_id_is_400(client: TestClient) -> None:
    request = _request()
    del request["context"]["patientId"]
    assert_400(client.post(SELECT, json=request), "context.patientId")


@pytest.mark.parametrize("patient_id", ["", "Patient/"])
def test_a_patient_id_naming_no_patient_is_400(client: TestClient, patient_id: str) -> None:
    request = _request()
    request["context"]["patientId"] = patient_id
    assert_400(client.post(SELECT, json=request), "context.patientId")


def _absent(context: dict[str, Any], field: str, how: Any) -> None:
    """``field`` left out ("missing") or sent as ``how`` (null)."""
    if how == "missing":
        del context[field]
    else:
        context[field] = how


@pytest.mark.parametrize("selections", ["missing", None])
def test_draft_orders_without_selections_are_400_naming_selections(client: TestClient, selections: Any) -> None:
    """A critical draft and no selections: nothing was reviewed, and the answer said no cards."""
    request = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    _absent(request["context"], "selections", selections)
    assert "draft orders under review" in assert_400(client.post(SELECT, json=request), "context.selections")


@pytest.mark.parametrize("drafts", ["missing", None])
def test_selections_or_order_sign_without_draft_orders_are_400_naming_draft_orders(
    client: TestClient, drafts: Any
) -> None:
    """CDS Hooks requires draftOrders of both hooks: without it, order-sign, or order-select naming
    drafts, answered no cards, as if the orders were checked and clear (a conformance review). The
    sandbox's re-fire with neither selections nor draftOrders is still nothing to review."""
    request = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    _absent(request["context"], "draftOrders", drafts)
    assert "selections name draft orders" in assert_400(client.post(SELECT, json=request), "context.draftOrders")
    del request["context"]["selections"]
    signing = {**request, "hook": "order-sign"}
    assert "order-sign reviews" in assert_400(client.post(SIGN, json=signing), "context.draftOrders")
    assert client.post(SELECT, json=request).json() == {"cards": []}


def test_a_selection_with_a_trailing_newline_is_400(client: TestClient) -> None:
    """It passed the pattern (``$`` matches before a final newline) and named no order, unreviewed."""
    request = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    request["context"]["selections"] = [request["context"]["selections"][0] + "\n"]
    assert_400(client.post(SELECT, json=request), "context.selections")


def _authorization(access_token: str) -> dict[str, Any]:
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "scope": "s", "subject": "c"}


def test_fhir_authorization_requires_fhir_server(client: TestClient) -> None:
    authorization = _authorization("secret-token")
    response = client.post(SELECT, json=_request(fhirAuthorization=authorization, fhirServer=None))
    message = assert_400(response, "fhirAuthorization")
    assert "fhirAuthorization: requires fhirServer" in message
    assert "secret-token" not in message


def test_incomplete_fhir_authorization_names_the_field(client: TestClient) -> None:
    response = client.post(SELECT, json=_request(fhirAuthorization={"access_token": "t", "token_type": "Bearer"}))
    assert_400(response, "fhirAuthorization.expires_in", "fhirAuthorization.scope")


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "tökén", "two words"])
def test_an_access_token_not_fit_for_a_header_is_400_naming_it(client: TestClient, token: str) -> None:
    """Visible ASCII only (what a header holds): another was refused by the HTTP client on the
    first fetch, and the call answered 412 for the prefetch, not for the token."""
    request = _request(fhirAuthorization=_authorization(token), fhirServer="https://fhir.example.org/r4")
    message = assert_400(client.post(SELECT, json=request), "fhirAuthorization.access_token")
    assert token not in message


@pytest.mark.parametrize("token_type", ["Bearer", "bearer", "BEARER"])
def test_a_bearer_token_type_is_read_in_any_case(client: TestClient, token_type: str) -> None:
    """OAuth's token_type is case-insensitive (RFC 6749 §5.1): "BEARER" was a 400 for the call."""
    authorization = {**_authorization("t"), "token_type": token_type}
    request = _request(fhirAuthorization=authorization, fhirServer="https://fhir.example.org/r4")
    assert client.post(SELECT, json=request).status_code == 200


def test_a_token_type_other_than_bearer_is_400_naming_it(client: TestClient) -> None:
    authorization = {**_authorization("t"), "token_type": "Basic"}
    request = _request(fhirAuthorization=authorization, fhirServer="https://fhir.example.org/r4")
    assert_400(client.post(SELECT, json=request), "fhirAuthorization.token_type")


def test_an_access_token_of_any_visible_ascii_is_accepted(client: TestClient) -> None:
    """Real servers' tokens hold more than RFC 6750's b64token ("!", ":", "%"): they go as sent."""
    request = _request(fhirAuthorization=_authorization("00D!AQ:x%2Fy"), fhirServer="https://fhir.example.org/r4")
    assert client.post(SELECT, json=request).status_code == 200


def test_malformed_selection_is_400(client: TestClient) -> None:
    request = _request()
    request["context"]["selections"] = ["request-123"]
    assert_400(client.post(SELECT, json=request), "context.selections")


def test_two_drafts_of_one_id_are_400(client: TestClient) -> None:
    """A suggestion names its order by id: with two drafts of one id, "remove the cyclobenzaprine
    order" would delete whichever the EHR finds first (the ibuprofen)."""
    request = _request()
    entries = request["context"]["draftOrders"]["entry"]
    other = {**entries[0]["resource"], "medicationCodeableConcept": {"text": "ibuprofen 400 mg tablet"}}
    entries.insert(0, {"resource": other})
    message = assert_400(client.post(SIGN, json={**request, "hook": "order-sign"}), "context.draftOrders")
    assert "entry[1].resource.id" in message and "entry[0]" in message


def test_draft_orders_must_be_a_bundle(client: TestClient) -> None:
    request = _request()
    request["context"]["draftOrders"] = {"resourceType": "MedicationRequest"}
    assert_400(client.post(SELECT, json=request), "context.draftOrders")


def test_prefetch_values_must_be_resources_or_null(client: TestClient) -> None:
    request = _request()
    request["prefetch"]["conditions"] = "none"
    assert_400(client.post(SELECT, json=request), "prefetch.conditions")


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"order-select"', b"\xff\xfe"])
def test_not_a_cds_hooks_request_is_400(client: TestClient, body: bytes) -> None:
    response = client.post(SELECT, content=body, headers={"Content-Type": "application/json"})
    assert_400(response, "body")


def test_unknown_service_is_404(client: TestClient) -> None:
    response = client.post("/cds-services/no-such-service", json=_request())
    assert response.status_code == 404
    assert "no-such-service" in response.json()["issue"][0]["diagnostics"]
    assert client.post("/cds-services/no-such-service/feedback", json={"feedback": []}).status_code == 404


def test_unknown_path_and_method_answer_operation_outcomes(client: TestClient) -> None:
    assert client.get("/nowhere").json()["resourceType"] == "OperationOutcome"
    response = client.get(SELECT)
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", ["/cds-services", SELECT, f"{SELECT}/feedback"])
def test_cors_preflight_allows_the_sandbox(client: TestClient, path: str) -> None:
    response = client.options(
        path,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["access-control-allow-methods"]


def test_private_network_preflight_is_allowed(client: TestClient) -> None:
    response = client.options(
        SELECT,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert response.headers["access-control-allow-private-network"] == "true"


def test_cors_headers_on_responses(client: TestClient) -> None:
    response = client.post(SELECT, json=_request(), headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert response.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"


def test_a_browser_client_may_read_the_retry_and_authentication_headers(client: TestClient) -> None:
    """A browser hides every response header not exposed by CORS: the sandbox could not read when
    to resend feedback (``Retry-After`` on a 503) nor why a call was refused (``WWW-Authenticate``)."""
    response = client.post(SELECT, json=_request(), headers={"Origin": "https://sandbox.cds-hooks.org"})
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "www-authenticate"} <= exposed


def test_a_browser_page_is_not_let_send_credentials(client: TestClient) -> None:
    """A caller proves who it is by its JWT, sent as a header: a page's cookies or HTTP
    authentication (a credentialed request) are refused by the browser, so none rides along."""
    preflight = client.options(
        SELECT,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200 and "access-control-allow-credentials" not in preflight.headers
    response = client.post(SELECT, json=_request(), headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert response.status_code == 200 and "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "options", "status", "code", "expression"),
    [
        ("GET", "/nowhere", {}, 404, "not-found", None),
        ("GET", SELECT, {}, 405, "not-supported", None),
        ("POST", "/cds-services/no-such-service", {"json": {}}, 404, "not-found", None),
        (
            "POST",
            SELECT,
            {"content": b"{}", "headers": {"Content-Type": "text/plain"}},
            415,
            "not-supported",
            ["Content-Type"],
        ),
    ],
    ids=["unknown path", "method not allowed", "unknown service", "not JSON"],
)
def test_an_error_says_its_issue_type_and_names_a_field_only_when_one_is_at_fault(
    client: TestClient,
    method: str,
    path: str,
    options: dict[str, Any],
    status: int,
    code: str,
    expression: list[str] | None,
) -> None:
    """A client switches on the OperationOutcome's issue code; and FHIR JSON has no empty arrays:
    an error no field of the request is at fault for carries no ``expression``."""
    response = client.request(method, path, **options)
    assert response.status_code == status
    [issue] = response.json()["issue"]
    assert (issue["severity"], issue["code"], issue.get("expression")) == ("error", code, expression)


def test_cards_are_answered_as_application_json(client: TestClient) -> None:
    """CDS Hooks answers are JSON: a client that checks the media type before reading reads them."""
    response = client.post(SELECT, json=_request())
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"


# --- real-client tolerance: the sandbox's shapes ------------------------------------------


@pytest.mark.parametrize(
    ("call", "cards"),
    [
        (1, []),
        (2, ["cyclobenzaprine-older-adult", "cyclobenzaprine-duration"]),
        (3, ["cyclobenzaprine-older-adult", "cyclobenzaprine-duration", "nonpharmacologic-first-line"]),
    ],
)
def test_sandbox_session_as_captured(
    client: TestClient, fhir_server: FhirTestServer, call: int, cards: list[str]
) -> None:
    """Call 1 has no drug yet; calls 2 and 3 lack our prefetch keys, which come from fhirServer."""
    request = fixture(f"sandbox/order-select-call-{call}.json")
    request["fhirServer"] = fhir_server.base
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == cards


def test_no_selections_or_draft_orders_is_nothing_to_evaluate(client: TestClient) -> None:
    request = _request(prefetch=None, fhirServer=None)
    del request["context"]["selections"]
    del request["context"]["draftOrders"]
    assert client.post(SELECT, json=request).json() == {"cards": []}


def test_draft_with_no_medication_needs_no_data(client: TestClient) -> None:
    """Nothing to evaluate: 200 without cards even though no data could be had."""
    request = fixture("sandbox/order-select-call-1.json")
    request.pop("fhirServer")
    request.pop("prefetch")
    assert client.post(SELECT, json=request).json() == {"cards": []}


def test_invalid_draft_is_read_but_not_edited(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """A draft the R4 model rejects is still reviewed from its JSON (issue 15: no silent miss),
    but no update echoes it back; the card says why, and the log names the field, at INFO."""
    caplog.set_level(logging.INFO, logger="cds_service")
    request = _request()
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft.update(id="broken-pt-8812", authoredOn="yesterday")
    request["context"]["selections"] = ["MedicationRequest/broken-pt-8812"]
    response = client.post(SELECT, json=request)
    assert response.status_code == 200
    [card] = response.json()["cards"]
    assert card["source"]["topic"]["code"] == "cyclobenzaprine-duration"
    assert "suggestions" not in card and "selectionBehavior" not in card
    assert "The order as sent is incomplete, so no edit to it can be offered." in card["detail"]
    assert "a MedicationRequest in draftOrders read tolerantly, no edit offered: authoredOn" in caplog.text
    assert "yesterday" not in caplog.text and "broken-pt-8812" not in caplog.text  # an id may hold PHI


def _mistype(draft: dict[str, Any], field: str, value: Any) -> None:
    if field == "dispenseRequest":
        draft[field] = value
    elif field == "doseQuantity":
        draft["dosageInstruction"][0]["doseAndRate"][0][field] = value
    else:
        draft["dosageInstruction"][0][field] = value


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("composed-swap-10mg-tid-30-days-age-70", "dispenseRequest", [{"numberOfRepeatsAllowed": 0}]),
        ("composed-swap-10mg-tid-30-days-age-70", "dispenseRequest", "30 days"),
        ("composed-swap-10mg-tid-30-days-age-70", "doseQuantity", "1 tablet"),
        ("composed-swap-10mg-tid-30-days-age-70", "doseQuantity", [{"value": 1, "code": "{pill}"}]),
        ("composed-swap-10mg-tid-30-days-age-70", "timing", "TID"),
        ("sublingual-5.6mg-age-70", "timing", "QD"),
        ("sublingual-5.6mg-age-70", "timing", [{"code": {"text": "QD"}}]),
    ],
)
def test_a_draft_field_of_the_wrong_type_keeps_the_cards_without_an_edit(
    client: TestClient, name: str, field: str, value: Any
) -> None:
    """The facts read a field of the wrong JSON type as absent; the edits the cards would offer
    were built from the draft before its soundness was asked, and read it as the right type:
    a 500, every card lost (the MAO inhibitor's critical one with them)."""
    request = fixture(f"cyclobenzaprine-older-adult/fires-{name}.json")
    _mistype(request["context"]["draftOrders"]["entry"][0]["resource"], field, value)
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    cards = {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}
    older = cards["cyclobenzaprine-older-adult"]
    assert [a["type"] for s in older.get("suggestions", ()) for a in s["actions"]] == ["delete"]
    assert "The order as sent is incomplete, so no edit to it can be offered." in older["detail"]
    assert not [
        a for c in cards.values() for s in c.get("suggestions", ()) for a in s["actions"] if a["type"] == "update"
    ]


def test_draft_orders_without_bundle_type_and_single_object_arrays(client: TestClient) -> None:
    """The sandbox capture's shapes: no Bundle.type, `category` and `reasonCode` as objects."""
    request = fixture("sandbox/order-select-r4.json")
    request["prefetch"].update(conditions=None, medications=None, imaging=None)
    assert "type" not in request["context"]["draftOrders"]
    resource = request["context"]["draftOrders"]["entry"][0]["resource"]
    assert isinstance(resource["category"], dict) and isinstance(resource["reasonCode"], dict)
    [card] = [
        c
        for c in client.post(SELECT, json=request).json()["cards"]
        if c["source"]["topic"]["code"] == "cyclobenzaprine-duration"
    ]
    updated = card["suggestions"][0]["actions"][0]["resource"]
    assert updated["reasonCode"] == [resource["reasonCode"]]


@pytest.mark.parametrize("bundle", ["prefetch.conditions", "context.draftOrders"])
def test_a_bundle_entry_sent_as_one_object_is_read_as_one_entry(client: TestClient, bundle: str) -> None:
    """Like every other array sent as a single object: the critical card must not be lost to the shape."""
    request = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    expected = client.post(SELECT, json=request).json()["cards"]
    assert "critical" in [card["indicator"] for card in expected]
    holder = request["prefetch"]["conditions"] if bundle == "prefetch.conditions" else request["context"]["draftOrders"]
    [holder["entry"]] = holder["entry"]
    cards = client.post(SELECT, json=request).json()["cards"]
    assert [(c["summary"], c["indicator"]) for c in cards] == [(c["summary"], c["indicator"]) for c in expected]


def _set(request: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target: Any = request
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return request


DRAFT = "context.draftOrders.entry.0.resource"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("prefetch.medications.entry", True),
        ("prefetch.conditions.entry", 7),
        (
            "prefetch.medications",
            {
                "resourceType": "Bundle",
                "entry": [{"resource": {"resourceType": "MedicationRequest", "status": {"x": 1}}}],
            },
        ),
        (f"{DRAFT}.dosageInstruction.0.timing.repeat.frequency", 1e308),
        (f"{DRAFT}.dosageInstruction.0.doseAndRate.0.doseQuantity.value", 1e308),
        (f"{DRAFT}.dispenseRequest.expectedSupplyDuration.value", 1e308),
        (f"{DRAFT}.dosageInstruction", None),
        (f"{DRAFT}.dispenseRequest", None),
        (f"{DRAFT}.medicationCodeableConcept.coding", "828348"),
        ("context.draftOrders.entry", {"resource": {}}),
    ],
)
def test_hostile_shapes_never_cause_a_5xx(client: TestClient, path: str, value: Any) -> None:
    response = client.post(SELECT, json=_set(_request(), path, value))
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert [p for card in response.json()["cards"] for p in _walk(card)] == []  # no null or empty echoed


def test_a_trailing_slash_is_404_not_a_redirect_to_the_host_sent(client: TestClient) -> None:
    """A 307 built from the Host header: a client following it re-posts its patient's data there."""
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    response = client.post(f"{SELECT}/", json=request, headers={"Host": "evil.example.com"}, follow_redirects=False)
    assert response.status_code == 404 and "location" not in response.headers


def test_a_method_not_allowed_says_which_are(client: TestClient) -> None:
    response = client.get(SELECT)
    assert (response.status_code, response.headers.get("Allow")) == (405, "POST")
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", ["/cds-services", "/metrics", "/analytics", "/analytics/report", "/healthz"])
def test_head_is_answered_where_get_is(client: TestClient, path: str) -> None:
    assert client.head(path).status_code == 200


def test_empty_selections_and_a_withdrawn_selection_are_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """No card can come: answered, as a selection naming no draft is, and the log says why."""
    request = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    request["context"]["selections"] = []
    assert client.post(SELECT, json=request).json() == {"cards": []}
    assert "context.selections is empty: none of the draft orders is reviewed" in caplog.text
    request = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    request["context"]["draftOrders"]["entry"][0]["resource"]["status"] = "cancelled"
    assert client.post(SELECT, json=request).json() == {"cards": []}
    assert "names no order in draftOrders (none, or one entered in error, cancelled or revoked)" in caplog.text
