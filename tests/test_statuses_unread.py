"""A status the service cannot read is said, not read as a status it knows.

A red flag whose ``clinicalStatus`` was "actve" (or a code of no status value set, or words
alone) was read as inactive: its card went missing with no word. It is now read as no status
(R4 allows none: the condition stands unless it has abated), and the partial-history notice
names it as taken as current. A history order whose status is no MedicationRequest status
("bogus", "unknown", none) was left out with no word: the duplicate-relaxant card went missing.
It is still no course (it may have been cancelled, or entered in error), and the notice names
its drug for the clinician to ask. Statuses the service knows stay as they were, said by nobody.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, fixture, rule_ids
from tests.test_fhir_versions import ORDER

RED_FLAG = "back-pain-red-flag/fires-bone-metastasis-c79-51.json"
DUPLICATE = "muscle-relaxant-duplicate/fires-tizanidine-active.json"
NOT_READ = "The patient's history was not read in full: checks may be incomplete"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def first(request: dict[str, Any], key: str) -> dict[str, Any]:
    resource: dict[str, Any] = request["prefetch"][key]["entry"][0]["resource"]
    return resource


def notice(body: dict[str, Any]) -> dict[str, Any]:
    card: dict[str, Any] = body["cards"][-1]
    assert card["source"]["topic"]["code"] == "partial-history"
    return card


UNREAD_CLINICAL = [
    {"coding": [{"system": CLINICAL, "code": "actve"}]},
    {"coding": [{"code": "actve"}]},
    {"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}]},
    {"text": "Active"},
    {},
]


@pytest.mark.parametrize("status", UNREAD_CLINICAL)
def test_a_red_flag_whose_clinical_status_cannot_be_read_is_taken_as_current_and_said(
    module: TestClient, status: dict[str, Any]
) -> None:
    request = fixture(RED_FLAG)
    condition = first(request, "conditions")
    condition["clinicalStatus"] = status
    body = answered(module, request)
    assert "back-pain-red-flag" in rule_ids(body)
    card = notice(body)
    assert card["summary"] == NOT_READ
    display = condition["code"]["coding"][0]["display"]
    assert f"A condition's status could not be read, so it was taken as current: **{display}**." in card["detail"]
    assert condition["id"] not in card["detail"] and request["context"]["patientId"] not in card["detail"]


def test_a_verification_status_that_cannot_be_read_is_said_where_the_condition_stands(module: TestClient) -> None:
    """Without a clinical status, an unknown verification code dropped the condition (as
    "unconfirmed" does): read as none, it stands, and is said (it may have been "refuted")."""
    request = fixture(RED_FLAG)
    condition = first(request, "conditions")
    del condition["clinicalStatus"]
    condition["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": "confirmd"}]}
    body = answered(module, request)
    assert "back-pain-red-flag" in rule_ids(body)
    assert "so it was taken as current" in notice(body)["detail"]


@pytest.mark.parametrize(
    ("field", "status", "fires"),
    [
        ("clinicalStatus", None, True),  # none given: stands, as R4 allows
        ("clinicalStatus", {"coding": [{"system": CLINICAL, "code": "resolved"}]}, False),
        ("clinicalStatus", {"coding": [{"code": "actve"}, {"code": "active"}]}, True),  # one known code is read
        ("verificationStatus", {"coding": [{"system": VERIFICATION, "code": "refuted"}]}, False),
        ("verificationStatus", {"coding": [{"system": VERIFICATION, "code": "unconfirmed"}]}, True),
    ],
)
def test_statuses_the_service_reads_bring_no_notice(
    module: TestClient, field: str, status: dict[str, Any] | None, fires: bool
) -> None:
    request = fixture(RED_FLAG)
    if status is None:
        del first(request, "conditions")[field]
    else:
        first(request, "conditions")[field] = status
    found = rule_ids(answered(module, request))
    assert ("back-pain-red-flag" in found) is fires
    assert "partial-history" not in found


def test_a_refuted_condition_with_a_clinical_status_unread_is_not_said(module: TestClient) -> None:
    """Refuted is read: whatever its clinical status, it is no condition, and nothing is unsaid."""
    request = fixture(RED_FLAG)
    condition = first(request, "conditions")
    condition["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "actve"}]}
    condition["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": "refuted"}]}
    assert rule_ids(answered(module, request)) == ["cyclobenzaprine-duration"]


@pytest.mark.parametrize("status", ["bogus", "unknown", "", None, 3])
def test_a_history_order_whose_status_cannot_be_read_is_named(module: TestClient, status: object) -> None:
    request = fixture(DUPLICATE)
    order = first(request, "medications")
    if status is None:
        del order["status"]
    else:
        order["status"] = status
    body = answered(module, request)
    assert "muscle-relaxant-duplicate" not in rule_ids(body)
    card = notice(body)
    assert card["summary"] == NOT_READ
    assert (
        "An order's status could not be read, so no check used it: **tizanidine 2 MG Oral Tablet**." in card["detail"]
    )
    assert order["id"] not in card["detail"]


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "draft"])
def test_a_history_order_withdrawn_is_no_course_and_no_notice(module: TestClient, status: str) -> None:
    request = fixture(DUPLICATE)
    first(request, "medications")["status"] = status
    assert "partial-history" not in rule_ids(answered(module, request))


def test_an_old_order_whose_status_cannot_be_read_is_not_named(module: TestClient) -> None:
    """Written before any check reads a finished course: a legacy order's "unknown" is no news."""
    request = fixture(DUPLICATE)
    order = first(request, "medications")
    order["status"], order["authoredOn"] = "unknown", "2019-03-02"
    assert "partial-history" not in rule_ids(answered(module, request))


def test_a_dstu2_order_whose_status_cannot_be_read_is_named(module: TestClient) -> None:
    """The sandbox's DSTU2 MedicationOrder: its statuses are R4's, and one not among them is said."""
    request = fixture(ORDER.format("dstu2"))
    assert "muscle-relaxant-duplicate" in rule_ids(answered(module, request))
    first(request, "medications")["status"] = "bogus"
    body = answered(module, request)
    assert "muscle-relaxant-duplicate" not in rule_ids(body)
    assert "so no check used it: **Cyclobenzaprine" in notice(body)["detail"]


def test_a_dstu2_condition_status_that_cannot_be_read_is_said(module: TestClient) -> None:
    """A DSTU2 status is a bare code, made R4's CodeableConcept: one no version knows is said."""
    request = fixture(ORDER.format("dstu2"))
    first(request, "conditions")["clinicalStatus"] = "actve"
    body = answered(module, request)
    assert "cyclobenzaprine-hepatic-impairment" in rule_ids(body)
    assert "so it was taken as current: **Chronic viral hepatitis C**." in notice(body)["detail"]
