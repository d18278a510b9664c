"""The facts of clinical specification §1, pinned through HTTP at each boundary.

Each test posts a crafted order-select request (the sandbox's cyclobenzaprine 10 mg order for a
47-year-old, today 2026-11-21) and reads the computed fact off the card a rule makes of it: the
duration card's "N days planned" / "N taken + M planned", the MAOI card's washout, the
contraindication card for an active condition, the refractory card's "N weeks" of symptoms.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture

BASE = "cyclobenzaprine-duration/silent-21-days.json"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CYCLOBENZAPRINE_10 = (RXNORM, "828348", "Cyclobenzaprine hydrochloride 10 MG Oral Tablet")
PHENELZINE_15 = (RXNORM, "312347", "Phenelzine 15 MG Oral Tablet")
HYPERTHYROIDISM = (ICD10CM, "E05.90", "Thyrotoxicosis, unspecified without thyrotoxic crisis or storm")
MI = (SNOMED, "22298006", "Myocardial infarction (disorder)")
LOW_BACK_PAIN = (ICD10CM, "M54.50", "Low back pain, unspecified")
SCIATICA = (ICD10CM, "M54.31", "Sciatica, right side")


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


# --- building requests ---------------------------------------------------------------------


def days(value: float, unit: str = "d") -> dict[str, Any]:
    return {"value": value, "system": "http://unitsofmeasure.org", "code": unit}


def step(
    per_day: int = 1,
    *,
    units: float | None = 1,
    unit: str = "{tbl}",
    bounds: tuple[str, str | None] | None = None,
    duration: dict[str, Any] | None = None,
    sequence: int | None = None,
) -> dict[str, Any]:
    """One dosage instruction: ``units`` of ``unit`` ``per_day`` times a day (no dose when None)."""
    repeat: dict[str, Any] = {"frequency": per_day, "period": 1, "periodUnit": "d"}
    if bounds:
        repeat["boundsPeriod"] = {"start": bounds[0], **({"end": bounds[1]} if bounds[1] else {})}
    if duration:
        repeat["boundsDuration"] = duration
    dosage: dict[str, Any] = {"timing": {"repeat": repeat}}
    if units is not None:
        quantity = {"value": units, "system": "http://unitsofmeasure.org", "code": unit}
        dosage["doseAndRate"] = [{"doseQuantity": quantity}]
    if sequence is not None:
        dosage["sequence"] = sequence
    return dosage


def quantity(value: float) -> dict[str, Any]:
    return {"quantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "{tbl}"}}


def concept(code: tuple[str, str, str], text: str | None = None) -> dict[str, Any]:
    system, value, display = code
    return {"coding": [{"system": system, "code": value, "display": display}], "text": text or display}


def course(
    id: str,
    drug: tuple[str, str, str] = CYCLOBENZAPRINE_10,
    *,
    status: str = "completed",
    authored: str | None = None,
    dosage: list[dict[str, Any]] | None = None,
    dispense: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A MedicationRequest of the patient's history."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": id,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/harness-pt-1"},
        "medicationCodeableConcept": concept(drug),
        "dosageInstruction": dosage or [step()],
    }
    if authored:
        resource["authoredOn"] = authored
    if dispense:
        resource["dispenseRequest"] = dispense
    return resource


def condition(
    id: str,
    *codes: tuple[str, str, str],
    text: str | None = None,
    onset: str | None = None,
    recorded: str | None = None,
    clinical: str | None = "active",
    verification: str | None = None,
    abated: str | None = None,
) -> dict[str, Any]:
    """A Condition of the problem list; ``clinical``/``verification`` None leave the status out."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": id,
        "subject": {"reference": "Patient/harness-pt-1"},
        "code": {
            "coding": [{"system": s, "code": c, "display": d} for s, c, d in codes],
            "text": text or codes[0][2],
        },
    }
    system = "http://terminology.hl7.org/CodeSystem/condition-"
    if clinical:
        resource["clinicalStatus"] = {"coding": [{"system": system + "clinical", "code": clinical}]}
    if verification:
        resource["verificationStatus"] = {"coding": [{"system": system + "ver-status", "code": verification}]}
    for name, value in (("onsetDateTime", onset), ("recordedDate", recorded), ("abatementDateTime", abated)):
        if value:
            resource[name] = value
    return resource


def hook(
    *,
    dosage: list[dict[str, Any]] | None = None,
    dispense: dict[str, Any] | None = None,
    history: tuple[dict[str, Any], ...] = (),
    conditions: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """The base request with the draft's sig (``dispense`` {} drops the supply) and the history."""
    request = fixture(BASE)
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    if dosage is not None:
        order["dosageInstruction"] = dosage
    if dispense is not None:
        order["dispenseRequest"] = dispense
    for key, resources in (("medications", history), ("conditions", conditions)):
        request["prefetch"][key]["entry"] = [{"resource": r} for r in resources]
        request["prefetch"][key]["total"] = len(resources)
    return request


def post(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return response.json()


def duration_card(client: TestClient, request: dict[str, Any]) -> dict[str, Any] | None:
    cards = cards_for(post(client, request), "cyclobenzaprine-duration")
    return cards[0] if cards else None


def planned(client: TestClient, request: dict[str, Any]) -> str | None:
    """The duration card's days, "22 days planned" or "10 taken + 12 planned"; None without a card."""
    card = duration_card(client, request)
    if card is None:
        return None
    found = re.search(r"(\d+(?:\.\d)? taken \+ \d+(?:\.\d)? planned|\d+(?:\.\d)? days planned)", card["summary"])
    assert found, card["summary"]
    return found.group(1)


# --- planned duration: Period.end inclusive, tapers, units ----------------------------------


@pytest.mark.parametrize(
    ("end", "expected"),
    [("2026-12-21", None), ("2026-12-22", "22 days planned")],
    ids=["21-days-inclusive-silent", "22-days-inclusive-fires"],
)
def test_bounds_period_counts_its_end_day(client: TestClient, end: str, expected: str | None) -> None:
    """2026-12-01..2026-12-21 is 21 days (at the limit), ..12-22 is 22."""
    request = hook(dosage=[step(bounds=("2026-12-01", end))], dispense={})
    assert planned(client, request) == expected
    if expected:
        card = duration_card(client, request)
        assert card is not None and f"from 2026-12-01 to {end}" in card["detail"]


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(3, "wk", None), (1, "mo", "30 days planned"), (504, "h", None), (528, "h", "22 days planned")],
)
def test_duration_units(client: TestClient, value: float, unit: str, expected: str | None) -> None:
    """wk = 7 days, mo = 30 days, h = 1/24 day."""
    request = hook(dosage=[step(duration=days(value, unit))], dispense={})
    assert planned(client, request) == expected


def test_taper_spans_earliest_start_to_latest_end(client: TestClient) -> None:
    """Three steps given out of order: from the earliest start to the latest end, both included."""
    taper = [
        step(1, bounds=("2026-12-15", "2026-12-22")),
        step(3, bounds=("2026-12-01", "2026-12-07")),
        step(2, bounds=("2026-12-08", "2026-12-14")),
    ]
    request = hook(dosage=taper, dispense={})
    assert planned(client, request) == "22 days planned"
    card = duration_card(client, request)
    assert card is not None and "from 2026-12-01 to 2026-12-22" in card["detail"]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([(7, None), (7, None), (8, None)], "22 days planned"),
        ([(7, None), (7, None), (7, None)], None),
        ([(14, 1), (10, 1), (8, 2)], "22 days planned"),
        ([(14, 1), (14, 1), (7, 2)], None),
    ],
    ids=["steps-add-up-22", "steps-add-up-21", "same-sequence-together-22", "same-sequence-together-21"],
)
def test_taper_of_durations_adds_its_steps(
    client: TestClient, steps: list[tuple[int, int | None]], expected: str | None
) -> None:
    """boundsDuration steps run one after another; instructions sharing a ``sequence`` run together."""
    taper = [step(duration=days(length), sequence=sequence) for length, sequence in steps]
    assert planned(client, hook(dosage=taper, dispense={})) == expected


def test_taper_reads_the_highest_frequency(client: TestClient) -> None:
    """66 tablets at the highest frequency (three a day) last 22 days, not 66."""
    request = hook(dosage=[step(1), step(3)], dispense=quantity(66))
    assert planned(client, request) == "22 days planned"


def test_taper_reads_the_highest_dose(client: TestClient) -> None:
    """132 tablets at two tablets three times a day (the highest step) last 22 days."""
    request = hook(dosage=[step(3, units=1), step(3, units=2)], dispense=quantity(132))
    assert planned(client, request) == "22 days planned"


def test_dose_range_reads_its_high_end(client: TestClient) -> None:
    dosage = step(3, units=None)
    dosage["doseAndRate"] = [
        {"doseRange": {"low": {"value": 1, "code": "{tbl}"}, "high": {"value": 2, "code": "{tbl}"}}}
    ]
    assert planned(client, hook(dosage=[dosage], dispense=quantity(132))) == "22 days planned"


def test_absent_dose_is_one_unit(client: TestClient) -> None:
    assert planned(client, hook(dosage=[step(3, units=None)], dispense=quantity(66))) == "22 days planned"


@pytest.mark.parametrize("unit", ["{pill}", "{tablet}", "{tbl}", "TAB", "tablet", "capsule", "{capsule}"])
def test_dose_counted_in_units(client: TestClient, unit: str) -> None:
    """Two units three times a day: 132 units last 22 days."""
    request = hook(dosage=[step(3, units=2, unit=unit)], dispense=quantity(132))
    assert planned(client, request) == "22 days planned"


def test_dose_in_an_uncountable_unit_leaves_the_duration_unknown(client: TestClient) -> None:
    card = duration_card(client, hook(dosage=[step(3, units=5, unit="mL")], dispense=quantity(132)))
    assert card is not None and card["indicator"] == "info"


# --- medication history: courses, their first and last days -----------------------------------


@pytest.mark.parametrize(
    ("order_days", "expected"),
    [(11, None), (12, "10 taken + 12 planned")],
)
def test_history_course_ends_on_its_bounds_period_end(
    client: TestClient, order_days: int, expected: str | None
) -> None:
    """A course 2026-11-11..2026-11-20 was taken on 10 days: 10 + 11 is the 21-day limit."""
    prior = course("prior", authored="2026-11-11", dosage=[step(bounds=("2026-11-11", "2026-11-20"))])
    request = hook(dosage=[step(duration=days(order_days))], dispense={}, history=(prior,))
    assert planned(client, request) == expected


@pytest.mark.parametrize(
    "prior",
    [
        course("by-duration", authored="2026-11-11", dosage=[step(duration=days(10))]),
        course("by-supply", authored="2026-11-11", dispense={"expectedSupplyDuration": days(10)}),
        course("by-validity", dispense={"validityPeriod": {"start": "2026-11-11"}, "expectedSupplyDuration": days(10)}),
        course("by-bounds-start", dosage=[step(bounds=("2026-11-11", "2026-11-20"))]),
        course(
            "by-open-bounds-start",
            dosage=[step(bounds=("2026-11-11", None))],
            dispense={"expectedSupplyDuration": days(10)},
        ),
        course("recorded-later", authored="2026-11-20", dosage=[step(bounds=("2026-11-06", "2026-11-15"))]),
        course("stopped", status="stopped", authored="2026-11-11", dosage=[step(duration=days(10))]),
        course("on-hold", status="on-hold", authored="2026-11-11", dosage=[step(duration=days(10))]),
    ],
    ids=lambda prior: prior["id"],
)
def test_course_of_ten_days(client: TestClient, prior: dict[str, Any]) -> None:
    """Start + 10 days covers the start and the 9 days after, however the course states it (a
    course authored after it began runs on the dates it records)."""
    request = hook(dosage=[step(duration=days(12))], dispense={}, history=(prior,))
    assert planned(client, request) == "10 taken + 12 planned"


@pytest.mark.parametrize("status", ["cancelled", "draft", "entered-in-error"])
def test_courses_not_taken_do_not_count(client: TestClient, status: str) -> None:
    prior = course("prior", status=status, authored="2026-11-11", dosage=[step(duration=days(10))])
    request = hook(dosage=[step(duration=days(12))], dispense={}, history=(prior,))
    assert planned(client, request) is None


def test_unknown_duration_is_assumed_14_days(client: TestClient) -> None:
    prior = course("prior", authored="2026-11-01")
    request = hook(dosage=[step(duration=days(8))], dispense={}, history=(prior,))
    assert planned(client, request) == "14 taken + 8 planned"


def test_active_order_of_unknown_duration_runs_until_today(client: TestClient) -> None:
    """Active since 2026-11-01: 21 days up to today, not the 14 assumed for a finished course."""
    prior = course("prior", status="active", authored="2026-11-01")
    request = hook(dosage=[step(duration=days(8))], dispense={}, history=(prior,))
    assert planned(client, request) == "21 taken + 8 planned"


@pytest.mark.parametrize(
    ("last_day", "fires"),
    [("2026-11-08", True), ("2026-11-07", False)],
    ids=["ended-13-days-ago", "ended-14-days-ago"],
)
def test_mao_inhibitor_ended_days_ago_counts_from_its_last_day(client: TestClient, last_day: str, fires: bool) -> None:
    """A boundsPeriod ending 2026-11-08 ended 13 days before 2026-11-21: inside the 14-day washout."""
    maoi = course(
        "maoi", PHENELZINE_15, status="stopped", authored="2026-09-01", dosage=[step(bounds=("2026-09-01", last_day))]
    )
    cards = cards_for(post(client, hook(history=(maoi,))), "cyclobenzaprine-maoi")
    assert [card["indicator"] for card in cards] == (["critical"] if fires else [])


# --- active conditions ------------------------------------------------------------------------


def contraindication(client: TestClient, *conditions: dict[str, Any]) -> list[dict[str, Any]]:
    return cards_for(post(client, hook(conditions=conditions)), "cyclobenzaprine-contraindicated-condition")


@pytest.mark.parametrize(
    ("clinical", "verification", "abated", "active"),
    [
        ("active", None, None, True),
        ("recurrence", None, None, True),
        ("relapse", "unconfirmed", None, True),
        ("resolved", None, None, False),
        ("inactive", "confirmed", None, False),
        ("active", "refuted", None, False),
        ("active", "entered-in-error", None, False),
        (None, None, None, True),
        (None, "confirmed", None, True),
        (None, "provisional", None, True),
        (None, "unconfirmed", None, False),
        (None, "differential", None, False),
        (None, "confirmed", "2026-10-01", False),
        (None, None, "2026-12-31", True),
    ],
)
def test_active_condition(
    client: TestClient, clinical: str | None, verification: str | None, abated: str | None, active: bool
) -> None:
    """Hyperthyroidism is a contraindication only while active (clinical specification §1)."""
    hyperthyroidism = condition(
        "thyroid", HYPERTHYROIDISM, onset="2025-01-01", clinical=clinical, verification=verification, abated=abated
    )
    assert len(contraindication(client, hyperthyroidism)) == (1 if active else 0)


@pytest.mark.parametrize(
    ("codes", "text", "active"),
    [
        ((HYPERTHYROIDISM,), "History of hyperthyroidism", False),
        ((HYPERTHYROIDISM,), "history of thyrotoxicosis", False),
        ((HYPERTHYROIDISM, (ICD10CM, "Z86.39", "Personal history of other endocrine disease")), None, False),
        ((HYPERTHYROIDISM, (ICD10CM, "Z8739", "Personal history of other diseases")), "Thyrotoxicosis", False),
        ((MI,), "Old myocardial infarction", False),
        ((MI,), "Healed myocardial infarction", False),
        ((MI,), "Past MI, no symptoms", False),
        ((MI,), "Recent myocardial infarction", True),
        ((HYPERTHYROIDISM,), "Thyrotoxicosis (threshold labs)", True),
    ],
    ids=[
        "history-of",
        "history-of-lower-case",
        "z86-personal-history",
        "z87-undotted",
        "old-mi",
        "healed-mi",
        "past-mi",
        "recent-mi-stays",
        "old-inside-a-word-stays",
    ],
)
def test_past_disease_is_never_active(
    client: TestClient, codes: tuple[tuple[str, str, str], ...], text: str | None, active: bool
) -> None:
    """ "History of", "old", "past", "healed" (as words) and Z86/Z87 name the past; "Recent" does not."""
    found = condition("past", *codes, text=text, onset="2026-11-11")
    assert len(contraindication(client, found)) == (1 if active else 0)


def test_recorded_date_stands_in_for_a_missing_onset(client: TestClient) -> None:
    """An acute MI with no onset, recorded 10 days ago: the record date is the onset (within 90 days)."""
    mi = condition("mi", (ICD10CM, "I21.9", "Acute myocardial infarction, unspecified"), recorded="2026-11-11")
    [card] = contraindication(client, mi)
    assert card["indicator"] == "critical"


# --- symptom duration ---------------------------------------------------------------------------


def refractory(client: TestClient, request: dict[str, Any]) -> str | None:
    """The refractory card's "N weeks" of symptoms; None without a card."""
    cards = cards_for(post(client, request), "refractory-spasm-imaging")
    if not cards:
        return None
    found = re.search(r"for (\d+) weeks", cards[0]["summary"])
    assert found, cards[0]["summary"]
    return found.group(1)


def relaxant_course(authored: str) -> dict[str, Any]:
    return course("relaxant", authored=authored, dosage=[step(duration=days(10))])


def test_symptoms_date_from_a_relaxant_course_earlier_than_the_back_pain(client: TestClient) -> None:
    """Back pain recorded 20 days ago, but a relaxant course began 45 days ago: 6 weeks of symptoms."""
    back_pain = condition("back", LOW_BACK_PAIN, onset="2026-11-01")
    request = hook(history=(relaxant_course("2026-10-07"),), conditions=(back_pain,))
    assert refractory(client, request) == "6"


def test_symptoms_date_from_the_earliest_condition(client: TestClient) -> None:
    """Sciatica since 50 days ago, back pain since 10: 7 weeks."""
    conditions = (
        condition("back", LOW_BACK_PAIN, onset="2026-11-11"),
        condition("sciatica", SCIATICA, onset="2026-10-02"),
    )
    assert refractory(client, hook(conditions=conditions)) == "7"


@pytest.mark.parametrize(
    ("history", "conditions"),
    [
        ((), (condition("back", LOW_BACK_PAIN, onset="2026-11-01"),)),
        ((relaxant_course("2026-08-22"),), (condition("back", LOW_BACK_PAIN, onset="2026-11-01"),)),
        (
            (relaxant_course("2026-11-01"),),
            (
                condition("back", LOW_BACK_PAIN, onset="2026-11-01"),
                condition("old", SCIATICA, onset="2026-06-01", clinical="resolved"),
                condition("past", SCIATICA, text="History of sciatica", onset="2026-06-01"),
            ),
        ),
    ],
    ids=["back-pain-20-days", "relaxant-course-91-days-ago-does-not-count", "resolved-and-past-do-not-count"],
)
def test_short_symptoms_make_no_refractory_card(
    client: TestClient, history: tuple[dict[str, Any], ...], conditions: tuple[dict[str, Any], ...]
) -> None:
    assert refractory(client, hook(history=history, conditions=conditions)) is None


@pytest.mark.parametrize(
    "taper",
    [
        [step(3, duration=days(10)), step(2, duration=days(10)), step(1, duration=days(10))],
        [
            step(1, bounds=("2026-12-21", "2026-12-30")),
            step(3, bounds=("2026-12-01", "2026-12-10")),
            step(2, bounds=("2026-12-11", "2026-12-20")),
        ],
    ],
    ids=["durations", "dated-out-of-order"],
)
def test_accepting_the_duration_limit_of_a_taper_leaves_21_days(
    client: TestClient, taper: list[dict[str, Any]]
) -> None:
    """The update trims the steps in the order they run to 21 days in all (10 + 10 + 1), not 21 each."""
    request = hook(dosage=taper, dispense={})
    assert planned(client, request) == "30 days planned"
    card = duration_card(client, request)
    assert card is not None
    [update] = [a for s in card["suggestions"] for a in s["actions"] if a["type"] == "update"]
    steps = update["resource"]["dosageInstruction"]
    kept = [(s["timing"]["repeat"]["frequency"], s["timing"]["repeat"]["boundsDuration"]["value"]) for s in steps]
    assert kept == [(3, 10), (2, 10), (1, 1)]
    request["context"]["draftOrders"]["entry"][0]["resource"] = update["resource"]
    assert duration_card(client, request) is None  # 21 days: at the limit
