"""A search refused for a resource type the FHIR server's own CapabilityStatement lists is a
failed fetch, never "the server has no such type" read as an empty history.

QA round 2, F1: a 400 "Invalid MedicationRequest search: a status is required" was read as the
server having no MedicationRequest (the words "invalid" and the type's name), the medication
history as empty, and the critical MAO-inhibitor card vanished with a line at INFO. The server's
/metadata listed MedicationRequest all along. Where the capabilities are unknown (no /metadata),
only words that say the type itself is unknown count.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, ago, fetching_request, rule_ids
from tests.fhir_server import FhirTestServer
from tests.test_prefetch import assert_412

MAOI = "cyclobenzaprine-maoi"


def _phenelzine() -> dict[str, Any]:
    """harness-pt-1 takes phenelzine (an MAO inhibitor): with cyclobenzaprine, a critical card."""
    return {
        "resourceType": "MedicationRequest",
        "id": "phenelzine-now",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/harness-pt-1"},
        "authoredOn": ago(20),
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "312347"}],
            "text": "Phenelzine 15 MG Oral Tablet",
        },
    }


def _outcome(code: str, words: str, *, in_details: bool = False) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": code}
    issue.update({"details": {"text": words}} if in_details else {"diagnostics": words})
    return {"resourceType": "OperationOutcome", "issue": [issue]}


# What servers answer for a search they refuse, each naming the type or no type at all.
REFUSALS = {
    "400-invalid-search": (400, _outcome("invalid", "Invalid MedicationRequest search: a status is required")),
    "404-not-supported-naming-no-type": (
        404,
        _outcome("not-supported", "Patient compartment search is not available for this client"),
    ),
    "404-hapi-unknown-type": (404, _outcome("processing", "HAPI-0302: Unknown resource type 'MedicationRequest'")),
    "400-type-not-supported": (
        400,
        _outcome("not-supported", "Resource type MedicationRequest is not supported", in_details=True),
    ),
}


@pytest.fixture
def server(fhir_server: FhirTestServer) -> FhirTestServer:
    fhir_server.add(_phenelzine())
    return fhir_server


def test_the_maoi_card_is_shown_when_the_history_is_read(client: TestClient, server: FhirTestServer) -> None:
    """The control: the same server answering, the critical card is there."""
    response = client.post(SELECT, json=fetching_request(server.base))
    assert response.status_code == 200, response.text
    assert MAOI in rule_ids(response.json())


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refused_search_of_a_listed_type_is_a_failed_fetch(
    client: TestClient, server: FhirTestServer, refusal: str
) -> None:
    """The server lists MedicationRequest: whatever its error says, the history was not read,
    and the medication history is required: 412 naming it, not a silent answer without the card."""
    server.canned["MedicationRequest"] = REFUSALS[refusal]
    assert_412(client.post(SELECT, json=fetching_request(server.base)), "medications")


def test_a_refused_condition_search_is_a_failed_fetch(client: TestClient, server: FhirTestServer) -> None:
    """QA's F1c: "Condition: unknown patient" named the type and a word of the unknown: read as
    no conditions, a cauda equina syndrome's card would go."""
    server.canned["Condition"] = (400, _outcome("invalid", "Condition: unknown patient harness-pt-1"))
    assert_412(client.post(SELECT, json=fetching_request(server.base)), "conditions")


@pytest.mark.parametrize("refusal", ["400-invalid-search", "404-not-supported-naming-no-type"])
def test_without_metadata_only_words_saying_the_type_is_unknown_are_no_data(
    client: TestClient, server: FhirTestServer, refusal: str
) -> None:
    """No /metadata: a search refused in words that do not say the type is unknown (an invalid
    search, a ``not-supported`` naming no type) is still a failed fetch."""
    server.metadata = False
    server.canned["MedicationRequest"] = REFUSALS[refusal]
    assert_412(client.post(SELECT, json=fetching_request(server.base)), "medications")


def test_a_listed_type_refused_after_its_statement_was_remembered_is_read_again_then_failed(
    client: TestClient, server: FhirTestServer
) -> None:
    """The statement remembered from an earlier call may be out of date (an upgraded server is
    read again: test_fhir_server_versions); read again, it still lists the type: a failed fetch."""
    assert MAOI in rule_ids(client.post(SELECT, json=fetching_request(server.base)).json())
    server.canned["MedicationRequest"] = server.unknown_type("MedicationRequest")
    assert_412(client.post(SELECT, json=fetching_request(server.base)), "medications")
    assert [seen.path for seen in server.seen].count("/fhir/metadata") == 2


def test_a_listed_type_refused_by_a_server_of_a_version_unknown_is_a_failed_fetch_every_call(
    client: TestClient, server: FhirTestServer
) -> None:
    """A statement of no known version (``fhirVersion`` "0.5.0") listing the type: remembered, a
    refusal was not read again (no version to ask in) and became no data, the MAO inhibitor's
    critical card gone on every call after the first (a code review)."""
    original = server.capability_statement

    def unknown_version() -> tuple[int, dict[str, Any]]:
        status, body = original()
        return status, {**body, "fhirVersion": "0.5.0"}

    server.capability_statement = unknown_version  # type: ignore[method-assign]
    assert MAOI in rule_ids(client.post(SELECT, json=fetching_request(server.base)).json())
    server.canned["MedicationRequest"] = server.unknown_type("MedicationRequest")
    assert_412(client.post(SELECT, json=fetching_request(server.base)), "medications")


@pytest.mark.parametrize(
    ("words", "no_data"),
    [
        ("Resource type [MedicationRequest] is not supported", True),
        ("MedicationRequest is not supported", True),
        ("Unknown type MedicationRequest", True),
        ("Unknown resource MedicationRequest/abc", False),  # an instance, not the type
        ("Search of MedicationRequest is not supported without a date", False),
    ],
)
def test_without_metadata_the_words_that_say_the_type_is_unknown_are_read_as_such(
    client: TestClient, server: FhirTestServer, words: str, no_data: bool
) -> None:
    """No /metadata: the phrasings servers use for a type they lack are no data (each missed
    one a 412 on every call); an instance's id or a search refused stays a failed fetch (a code
    review)."""
    server.metadata = False
    server.canned["MedicationRequest"] = (404, _outcome("not-supported", words))
    response = client.post(SELECT, json=fetching_request(server.base))
    if no_data:
        assert response.status_code == 200, response.text
        assert MAOI not in rule_ids(response.json())
    else:
        assert_412(response, "medications")
