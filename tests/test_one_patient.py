"""Every resource a call reads is the context's patient's: a Patient record, a draft or a history
entry naming another patient is left out, the rest is checked, and one warning card says what was
left out (refusing the call would hide every card, critical ones too). No id in the card."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, fixture, rule_ids
from tests.fhir_server import FhirTestServer

OLDER_ADULT = "cyclobenzaprine-older-adult/fires-age-65-10mg.json"
SERTRALINE = "cyclobenzaprine-serotonergic/fires-sertraline-active.json"
HEPATIC = "cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json"
NOTICE = "other-patient-data"


def answered(client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return response.json()["cards"]


def the_notice(cards: list[dict[str, Any]], what: str) -> dict[str, Any]:
    """The last card, the notice: a warning naming what was left out, and no patient's id."""
    card = cards[-1]
    assert card["source"]["topic"] == {
        "system": "urn:back-spasm-cds:notice",
        "code": NOTICE,
        "display": "Another patient's data left out",
    }
    assert card["indicator"] == "warning" and what in card["detail"]
    assert "other-22" not in str(card) and "someone-else" not in str(card)
    return card


def test_a_patient_record_of_another_patient_is_left_out(client: TestClient) -> None:
    """An 86-year-old's record sent for a patient whose own is not: no age, so no older-adult card."""
    request = fixture(OLDER_ADULT)
    assert "cyclobenzaprine-older-adult" in rule_ids({"cards": answered(client, request)})
    request["prefetch"]["patient"]["id"] = "someone-else-4471"
    cards = answered(client, request)
    assert "cyclobenzaprine-older-adult" not in rule_ids({"cards": cards})
    assert "cyclobenzaprine-duration" in rule_ids({"cards": cards})  # the rest is still checked
    the_notice(cards, "patient record sent is another patient's")


@pytest.mark.parametrize(
    "reference",
    ["Patient/other-22", "https://ehr.example.org/fhir/Patient/other-22", "Patient/other-22/_history/3"],
)
def test_a_history_entry_of_another_patient_is_left_out(client: TestClient, reference: str) -> None:
    request = fixture(HEPATIC)
    request["prefetch"]["conditions"]["entry"][0]["resource"]["subject"] = {"reference": reference}
    cards = answered(client, request)
    assert "cyclobenzaprine-hepatic-impairment" not in rule_ids({"cards": cards})
    the_notice(cards, "Conditions sent for another patient were left out")


def test_a_draft_under_review_for_another_patient_is_not_checked_and_the_card_says_so(client: TestClient) -> None:
    request = fixture(HEPATIC)
    request["context"]["draftOrders"]["entry"][0]["resource"]["subject"] = {"reference": "Patient/other-22"}
    cards = answered(client, request)
    assert len(cards) == 1
    card = the_notice(cards, "A draft order names a different patient")
    assert card["summary"] == "A draft order names another patient and was not checked: confirm the patient"


@pytest.mark.parametrize(
    "subject",
    [
        None,
        {"display": "the patient"},
        {"reference": "#contained-patient"},
        {"reference": "urn:uuid:0c3f1a1e-7b0e-4a53-9d53-4e5b0b1f0d9a"},
        {"reference": "Patient/"},
    ],
)
def test_a_subject_that_names_no_one_else_is_read(client: TestClient, subject: dict[str, str] | None) -> None:
    request = fixture(HEPATIC)
    condition = request["prefetch"]["conditions"]["entry"][0]["resource"]
    condition.pop("subject", None)
    if subject is not None:
        condition["subject"] = subject
    cards = answered(client, request)
    assert "cyclobenzaprine-hepatic-impairment" in rule_ids({"cards": cards})
    assert NOTICE not in rule_ids({"cards": cards})


def test_a_fhir_server_answering_with_another_patients_record_is_left_out(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    request = fixture(OLDER_ADULT)
    patient = request["prefetch"].pop("patient")
    fhir_server.canned = {"Patient": (200, {**patient, "id": "someone-else"})}  # asked for the context's patient
    request["fhirServer"] = fhir_server.base
    cards = answered(client, request)
    assert fhir_server.seen  # it was asked
    assert "cyclobenzaprine-older-adult" not in rule_ids({"cards": cards})
    the_notice(cards, "patient record sent is another patient's")


def test_the_notices_keep_their_place_within_the_card_limit(make_client: Any) -> None:
    """Three rule cards and both notices, at most four cards (the least the setting allows: at
    three, a hunt saw the card counting the rest and the notices, and no rule's card at all): the
    most severe card, the card counting the rest, then the notices."""
    request = fixture(OLDER_ADULT)
    request["prefetch"]["medications"] = fixture(SERTRALINE)["prefetch"]["medications"]
    full = answered(make_client(), request)
    assert len(full) == 3
    request.pop("fhirServer", None)
    request["prefetch"]["conditions"]["entry"] = [
        {"resource": {"resourceType": "Condition", "id": "c-1", "subject": {"reference": "Patient/other-22"}}}
    ]
    request["prefetch"]["conditions"]["link"] = [{"relation": "next", "url": "https://ehr.example.org/fhir/p2"}]
    cards = answered(make_client(max_cards=4), request)
    codes = [card["source"]["topic"]["code"] for card in cards]
    assert codes == [full[0]["source"]["topic"]["code"], "card-limit", NOTICE, "partial-history"]


def test_another_patients_record_among_entries_all_about_the_patient_is_left_out(client: TestClient) -> None:
    """The whole key is first asked at once whether every subject is the patient's: a Patient
    record of another id among such entries must still be seen (its id is what counts)."""
    request = fixture(HEPATIC)
    conditions = request["prefetch"]["conditions"]["entry"]
    own = conditions[0]["resource"]["subject"]
    assert all(entry["resource"]["subject"] == own for entry in conditions)
    conditions.append({"resource": {"resourceType": "Patient", "id": "other-22", "subject": dict(own)}})
    cards = answered(client, request)
    assert rule_ids({"cards": cards}) == ["cyclobenzaprine-hepatic-impairment", NOTICE]  # the rest is read
    the_notice(cards, "Conditions")


@pytest.mark.parametrize("named_by", ["subject", "patient"])
def test_another_patients_entry_among_entries_without_a_subject_is_left_out(client: TestClient, named_by: str) -> None:
    """Entries with no subject (the Medications Epic includes beside its orders) are asked at once
    too: another patient's entry among them, by ``subject`` or by ``patient`` (before R4), must
    still be seen; with none among them the entries are all read."""
    request = fixture(HEPATIC)
    conditions = request["prefetch"]["conditions"]["entry"]
    medication = {"resourceType": "Medication", "id": "m1", "code": {"text": "tizanidine 2 MG Oral Tablet"}}
    conditions.append({"resource": medication})
    assert rule_ids({"cards": answered(client, request)}) == ["cyclobenzaprine-hepatic-impairment"]
    hepatic = conditions[0]["resource"]
    del hepatic["subject"]
    hepatic[named_by] = {"reference": "Patient/other-22"}
    cards = answered(client, request)
    assert "cyclobenzaprine-hepatic-impairment" not in rule_ids({"cards": cards})
    the_notice(cards, "Conditions sent for another patient were left out")
