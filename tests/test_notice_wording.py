"""What the service's own notice cards say about the data behind the checks: each field in words a
clinician reads (the patient record, service orders), each said once, and why the age is unknown
named as the reason the older-adult checks did not run: a patient record that could not be read,
none sent, a birth date that is no date, none recorded."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture

SANDBOX = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
OLDER_ADULT = "cyclobenzaprine-older-adult/fires-age-65-10mg.json"
NOT_SENT = "No patient record was sent: the age is unknown, so the checks for older adults did not run."
NOT_RECORDED = (
    "The patient's birth date is not recorded: the age is unknown, so the checks for older adults did not run."
)


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def notice(client: TestClient, request: dict[str, Any], code: str) -> dict[str, Any]:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    card = response.json()["cards"][-1]
    assert card["source"]["topic"]["code"] == code
    return card


def codes(client: TestClient, request: dict[str, Any]) -> list[str]:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return [card["source"]["topic"]["code"] for card in response.json()["cards"]]


def test_another_patients_record_is_said_once_and_not_as_history(module: TestClient) -> None:
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["id"] = "someone-else-4471"
    card = notice(module, request, "other-patient-data")
    assert card["detail"].lower().count("the patient record") == 1
    assert "were left out" not in card["detail"]
    # Its record left out is no record "not sent": the one notice says why the age is unknown.
    assert codes(module, request) == ["cyclobenzaprine-duration", "other-patient-data"]


def test_a_patient_record_that_could_not_be_read_is_said_with_what_it_costs(module: TestClient) -> None:
    request = fixture(SANDBOX)
    del request["prefetch"]["patient"]
    request["fhirServer"] = "http://127.0.0.1:9/fhir"  # nothing listens: the record is not read
    card = notice(module, request, "partial-history")
    assert card["summary"] == "The patient record could not be read: the checks for older adults did not run"
    assert "The patient record could not be read: the age is unknown" in card["detail"]
    assert "was sent" not in card["detail"]  # a fetch that failed is said as failed, not as nothing sent


def test_a_patient_record_the_client_could_not_prefetch_is_said_as_not_read(module: TestClient) -> None:
    """The EHR's own fetch failed (an OperationOutcome in the key) and there is no server to ask:
    the record could not be read, which says more than that none was sent."""
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    request.pop("fhirServer", None)
    card = notice(module, request, "partial-history")
    assert card["summary"] == "The patient record could not be read: the checks for older adults did not run"
    assert "was sent" not in card["detail"]


@pytest.mark.parametrize("how", ["key-left-out", "null"])
def test_a_patient_record_not_sent_is_said_with_what_it_costs(module: TestClient, how: str) -> None:
    """An 80-year-old's order with no Patient sent and nothing to fetch it from (or ``"patient":
    null``) lost its older-adult card with no word, where the same order for a record that could
    not be read said so (clinical safety review H5): the clinician read the silence as a check done."""
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["birthDate"] = "1946-03-02"
    assert codes(module, request)[0] == "cyclobenzaprine-older-adult"
    if how == "null":  # "no data": not fetched, even with a server to ask
        request["prefetch"]["patient"] = None
    else:
        del request["prefetch"]["patient"]
        request.pop("fhirServer", None)
    assert codes(module, request) == ["cyclobenzaprine-duration", "partial-history"]
    card = notice(module, request, "partial-history")
    assert card["summary"] == "No patient record was sent: the checks for older adults did not run"
    assert NOT_SENT in card["detail"]
    assert card["detail"].count("the age is unknown") == 1
    assert "history" not in card["detail"] and request["context"]["patientId"] not in card["detail"]


@pytest.mark.parametrize("sent", ["practitioner", "entry-without-resource"])
def test_a_patient_key_sent_unreadable_is_said_as_not_read_not_as_not_sent(module: TestClient, sent: str) -> None:
    """Something was sent under ``patient`` that holds no Patient (read as not sent, an optional
    key): with nothing to fetch it from, the clinician was told no record was sent (a code review)."""
    request = fixture(OLDER_ADULT)
    request.pop("fhirServer", None)
    if sent == "practitioner":
        request["prefetch"]["patient"] = {"resourceType": "Practitioner", "id": "p1"}
    else:
        request["prefetch"]["patient"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"fullUrl": "x"}]}
    card = notice(module, request, "partial-history")
    assert card["summary"] == "The patient record could not be read: the checks for older adults did not run"
    assert "was sent" not in card["detail"]


@pytest.mark.parametrize("how", ["left-out", "null"])
def test_a_record_without_a_birth_date_is_said_as_not_recorded(module: TestClient, how: str) -> None:
    request = fixture(OLDER_ADULT)
    if how == "null":
        request["prefetch"]["patient"]["birthDate"] = None
    else:
        del request["prefetch"]["patient"]["birthDate"]
    assert codes(module, request) == ["cyclobenzaprine-duration", "partial-history"]
    card = notice(module, request, "partial-history")
    assert card["summary"] == "The patient's birth date is not recorded: the checks for older adults did not run"
    assert NOT_RECORDED in card["detail"]
    assert card["detail"].count("the age is unknown") == 1


@pytest.mark.parametrize("born", ["1946-03-02", "1961-11-21", "1961", "1979-01-20"])
def test_a_known_age_brings_no_notice(module: TestClient, born: str) -> None:
    """80, 65, 64 or 65, 47: the older adults' checks ran (and warned or stayed silent)."""
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["birthDate"] = born
    found = codes(module, request)
    assert "partial-history" not in found
    assert ("cyclobenzaprine-older-adult" in found) == (born != "1979-01-20")


def test_no_notice_on_a_call_no_rule_reads(module: TestClient) -> None:
    """The sandbox's Rx View before a drug is chosen, with no Patient: no check ran, so none is
    said not to have run (a notice on every call no rule reads would teach clinicians to skip it)."""
    request = fixture("real-world/cds-hooks-sandbox/order-select-rx-view-no-drug-chosen-yet.json")
    assert "patient" not in request.get("prefetch", {})
    assert codes(module, request) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "tizanidine-cyp1a2-inhibitor/fires-ciprofloxacin-ordered-tizanidine-active.json",
            ["tizanidine-cyp1a2-inhibitor"],
        ),
        ("low-value-back-therapy/fires-tens-device.json", ["low-value-back-therapy"]),
    ],
)
@pytest.mark.parametrize("how", ["no-patient", "no-birth-date", "birth-date-no-date"])
def test_an_unknown_age_is_not_said_where_no_rule_reads_the_age(
    module: TestClient, name: str, expected: list[str], how: str
) -> None:
    """A ciprofloxacin order (the CYP1A2 rule reads it) or a TENS order with no age known was
    told "the checks for older adults did not run", where none would have run (a code review)."""
    request = fixture(name)
    if how == "no-patient":
        request["prefetch"]["patient"] = None
    elif how == "no-birth-date":
        request["prefetch"]["patient"].pop("birthDate", None)
    else:
        request["prefetch"]["patient"]["birthDate"] = "04/07/1950"
    assert codes(module, request) == expected


@pytest.mark.parametrize("born", ["04/07/1950", "1950-02-30", "1950-13-01", 1950, ""])
def test_a_birth_date_that_is_no_date_is_said_not_read_as_no_age(module: TestClient, born: object) -> None:
    """A 76-year-old's birthDate in the US order (or a day no month has) left the age unknown, as
    a record without one does, and the older-adult card went missing with no word."""
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["birthDate"] = born
    card = notice(module, request, "partial-history")
    assert card["summary"] == "The patient's birth date could not be read: the checks for older adults did not run"
    assert "The patient's birth date could not be read: the age is unknown" in card["detail"]
    assert "history" not in card["detail"]


def test_a_history_read_in_part_and_a_birth_date_that_is_no_date_are_said_in_one_card(module: TestClient) -> None:
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["birthDate"] = "04/07/1950"
    request.pop("fhirServer", None)  # a next page with nobody to read it from: conditions read in part
    request["prefetch"]["conditions"]["link"] = [
        {"relation": "next", "url": "http://ehr.example/fhir/Condition?page=2"}
    ]
    card = notice(module, request, "partial-history")
    assert card["summary"] == "The patient's history was not read in full: checks may be incomplete"
    assert "The patient's birth date could not be read: the age is unknown" in card["detail"]
    assert "Not all of the patient's conditions could be read." in card["detail"]


def test_a_birth_date_that_is_no_date_is_logged_without_the_date_or_the_patient(
    module: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator sees why the notice came; the log holds no patient data (a birth date is PHI)."""
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["birthDate"] = "04/07/1950"
    with caplog.at_level("WARNING"):
        notice(module, request, "partial-history")
    logged = [r.getMessage() for r in caplog.records if r.name == "cds_service.facts.patient"]
    assert logged == ["patient: a birthDate that is no date: the age unknown, the older-adult checks not run"]
    assert not any(
        "1950" in r.getMessage() or request["context"]["patientId"] in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("born", ["2030-01-01", "2030-06", "2030"])
def test_a_birth_date_after_today_is_said_not_read_not_taken_as_a_child(module: TestClient, born: str) -> None:
    """A birth date not yet reached (a typo of the year, a date-of-service field mapped into it)
    made the age negative: the older-adult checks stayed silent as for a young adult, with no
    word. It says no age, as a birth date that is no date does."""
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["birthDate"] = born
    card = notice(module, request, "partial-history")
    assert card["summary"] == "The patient's birth date could not be read: the checks for older adults did not run"


@pytest.mark.parametrize("born", ["1800-03-01", "1900-01-01", "1902"])
def test_a_birth_date_older_than_anyone_has_lived_is_said_as_such(module: TestClient, born: str) -> None:
    """1800 read "age 226" on the older-adult card (make fuzz), and 1900-01-01 is an EHR's
    placeholder for a birth date unknown: no age, and the notice says why."""
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["birthDate"] = born
    card = notice(module, request, "partial-history")
    said = "The patient's birth date on record is over 122 years ago: the checks for older adults did not run"
    assert card["summary"] == said
    assert "cyclobenzaprine-older-adult" not in codes(module, request)


def test_the_oldest_age_ever_verified_is_an_age(module: TestClient) -> None:
    """Born 122 years ago today (the oldest age verified) is an age: the older-adult card says it."""
    request = fixture(OLDER_ADULT)
    request["prefetch"]["patient"]["birthDate"] = "1904"  # 121 or 122 on 2026-11-21
    [card] = cards_for(module.post(SELECT, json=request).json(), "cyclobenzaprine-older-adult")
    assert "121 or 122" in card["summary"] + card["detail"]


@pytest.mark.parametrize(
    ("second", "ages"),
    [
        ("1950-03-01", "76"),
        ("1950-04-03", "76"),
        ("1950", "76"),
        (None, "76"),
        ("1949-11-01", "76 or 77"),
        ("1900-01-01", "76"),
        ("04/07/1950", "76"),
    ],
    ids=["agree", "disagree-same-age", "a-year-alone", "one-without", "disagree", "placeholder", "no-date"],
)
def test_records_of_the_patient_that_disagree_on_the_birth_date_span_every_date(
    module: TestClient, second: str | None, ages: str
) -> None:
    """Two Patient records of one id in the patient key: the first was read (make fuzz), whichever
    was right; then, disagreeing, no age at all, and an 81-year-old's older-adult card was lost
    (the clinical review). Every date given is read, as a year alone spans its days: the card
    says the ages they allow, the oldest checked; a record with no birthDate, or one that gives
    no age (a placeholder, no date), adds nothing (a code review: a placeholder beside a real
    date left no age)."""
    request = fixture(OLDER_ADULT)
    patient = {**request["prefetch"]["patient"], "birthDate": "1950-03-01"}
    other = {k: v for k, v in patient.items() if k != "birthDate"} | ({"birthDate": second} if second else {})
    request["prefetch"]["patient"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": patient}, {"resource": other}],
    }
    [card] = cards_for(module.post(SELECT, json=request).json(), "cyclobenzaprine-older-adult")
    assert f"{ages})" in card["summary"] or f"age {ages}" in card["summary"] + card["detail"], card
    assert "partial-history" not in codes(module, request)


_OTHERS = {
    "conditions": {
        "resourceType": "Condition",
        "id": "c-1",
        "subject": {"reference": "Patient/someone-else-4471"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.50"}]},
    },
    "medications": {
        "resourceType": "MedicationRequest",
        "id": "m-1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/someone-else-4471"},
        "medicationCodeableConcept": {"text": "Phenelzine 15 MG Oral Tablet"},
    },
    "imaging": {
        "resourceType": "ServiceRequest",
        "id": "s-1",
        "status": "completed",
        "intent": "order",
        "subject": {"reference": "Patient/someone-else-4471"},
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]},
    },
}
_OWN = "this patient's own may be missing, so a check may not have run."


@pytest.mark.parametrize(
    ("keys", "said"),
    [
        (("medications",), f"Medication history sent for another patient was left out: {_OWN}"),
        (("conditions",), f"Conditions sent for another patient were left out: {_OWN}"),
        (("imaging",), f"Service orders sent for another patient were left out: {_OWN}"),
        (
            ("conditions", "medications"),
            f"Conditions and medication history sent for another patient were left out: {_OWN}",
        ),
        (
            ("conditions", "medications", "imaging"),
            f"Conditions, medication history and service orders sent for another patient were left out: {_OWN}",
        ),
    ],
    ids=["medications", "conditions", "imaging", "two", "three"],
)
def test_another_patients_history_is_said_in_agreement_with_what_it_names(
    module: TestClient, keys: tuple[str, ...], said: str
) -> None:
    """QA round 2, F10: "Another patient's medication history were left out: a check that needed
    them may be missing." The verb agrees with the fields named; and what may be missing is this
    patient's own data, not the other's, which no check needed (the clinical review). Each
    paragraph has single spaces, and the next says what to do."""
    request = fixture(SANDBOX)
    for key in keys:
        request["prefetch"][key]["entry"] = [{"resource": _OTHERS[key]}]
    card = notice(module, request, "other-patient-data")
    assert card["detail"].split("\n\n") == [
        said,
        "Confirm the patient before signing, and report the mix-up to the EHR's support.",
    ]
    assert "  " not in card["detail"]
