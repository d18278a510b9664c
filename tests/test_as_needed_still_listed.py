"""An as-needed history order still listed (active, on hold) is current: its supply over the most
doses a day allowed (§1's ``frequencyMax``) is the soonest it runs out, not when it does (a
pharmacist's review). 30 tizanidine tablets up to every 8 hours, listed active 15 days on, were
read as over after 10 days, and ciprofloxacin ordered now had no critical card; an oxycodone
taken as needed vanished from the CNS-depressant card the same way. A completed or stopped one
ran out as its supply says; bounds are the prescriber's own span; the days of cyclobenzaprine
taken are counted as read."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, ago, cards_for, fixture

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TABLET = {"unit": "tablet", "system": "http://unitsofmeasure.org", "code": "{tablet}"}


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def _as_needed(
    code: str, name: str, status: str, written: int, timing: str, tablets: int, high: int = 1
) -> dict[str, Any]:
    """A history order taken as needed, ``high`` tablets a dose at most, ``tablets`` dispensed."""
    dose = (
        {"doseQuantity": {"value": 1, **TABLET}}
        if high == 1
        else {"doseRange": {"low": {"value": 1, **TABLET}, "high": {"value": high, **TABLET}}}
    )
    return {
        "resourceType": "MedicationRequest",
        "id": "prn-1",
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/harness-pt-1"},
        "authoredOn": ago(written),
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": name}], "text": name},
        "dosageInstruction": [{"timing": {"code": {"text": timing}}, "asNeededBoolean": True, "doseAndRate": [dose]}],
        "dispenseRequest": {"quantity": {"value": tablets, **TABLET}},
    }


def _cards(client: TestClient, name: str, history: dict[str, Any]) -> dict[str, Any]:
    """The answer to ``name``'s request with ``history`` its one history order."""
    request = fixture(name)
    request["prefetch"]["medications"]["entry"] = [{"resource": history}]
    request["prefetch"]["medications"]["total"] = 1
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _tizanidine(status: str, **dosing: Any) -> dict[str, Any]:
    """Tizanidine 4 mg up to every 8 hours as needed, 30 tablets, written 15 days ago: 10 days
    at the most a day."""
    return _as_needed("313413", "tizanidine 4 MG Oral Tablet", status, 15, "Q8H", 30, **dosing)


def _oxycodone(status: str) -> dict[str, Any]:
    """Oxycodone 5 mg, 1–2 tablets up to every 4 hours as needed, 42 tablets, written 7 days ago:
    3.5 days at the most a day."""
    return _as_needed("1049621", "Oxycodone Hydrochloride 5 MG Oral Tablet", status, 7, "Q4H", 42, high=2)


CIPROFLOXACIN_ORDERED = "tizanidine-cyp1a2-inhibitor/fires-ciprofloxacin-ordered-tizanidine-active.json"
CYCLOBENZAPRINE_ORDERED = "muscle-relaxant-cns-depressant/fires-oxycodone-active.json"


@pytest.mark.parametrize(
    ("status", "said"), [("active", "(since 2026-11-06)"), ("on-hold", "(on hold; course from 2026-11-06)")]
)
def test_ciprofloxacin_beside_tizanidine_as_needed_still_listed_past_its_supply_is_critical(
    client: TestClient, status: str, said: str
) -> None:
    """On hold, the card names no last day: its supply's soonest end is no end (it said "to 2026-11-15")."""
    [card] = cards_for(_cards(client, CIPROFLOXACIN_ORDERED, _tizanidine(status)), "tizanidine-cyp1a2-inhibitor")
    assert card["indicator"] == "critical"
    assert f"**tizanidine 4 MG Oral Tablet {said}**" in card["detail"]


@pytest.mark.parametrize("status", ["active", "on-hold"])
def test_an_opioid_as_needed_still_listed_past_its_supply_is_a_cns_depressant(client: TestClient, status: str) -> None:
    [card] = cards_for(_cards(client, CYCLOBENZAPRINE_ORDERED, _oxycodone(status)), "muscle-relaxant-cns-depressant")
    assert card["summary"] == "Additive CNS and respiratory depression: cyclobenzaprine with oxycodone"


@pytest.mark.parametrize("status", ["completed", "stopped"])
def test_an_as_needed_order_finished_ran_out_as_its_supply_says(client: TestClient, status: str) -> None:
    assert not cards_for(_cards(client, CIPROFLOXACIN_ORDERED, _tizanidine(status)), "tizanidine-cyp1a2-inhibitor")
    assert not cards_for(_cards(client, CYCLOBENZAPRINE_ORDERED, _oxycodone(status)), "muscle-relaxant-cns-depressant")


def test_an_as_needed_order_bounded_to_7_days_ended_with_them(client: TestClient) -> None:
    """Still listed, taken as needed for 7 days (``boundsDuration``): the prescriber's span ends it."""
    tizanidine = _tizanidine("active")
    tizanidine["dosageInstruction"][0]["timing"]["repeat"] = {"boundsDuration": {"value": 7, "unit": "d"}}
    assert not cards_for(_cards(client, CIPROFLOXACIN_ORDERED, tizanidine), "tizanidine-cyp1a2-inhibitor")


def test_cyclobenzaprine_as_needed_still_listed_counts_its_days_as_its_supply_says(client: TestClient) -> None:
    """Its days taken are its supply at the most a day, as before (10, from 2026-11-06); listed, it
    is running beside the draft: the duplicate card's renewal-or-duplicate, not a prior course
    that failed (the class-switch card's)."""
    prior = _as_needed("828348", "Cyclobenzaprine hydrochloride 10 MG Oral Tablet", "active", 15, "TID", 30)
    cards = _cards(client, "cyclobenzaprine-duration/fires-cumulative-prior-course.json", prior)
    [duration] = cards_for(cards, "cyclobenzaprine-duration")
    assert duration["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 10 taken + 14 planned"
    [duplicate] = cards_for(cards, "muscle-relaxant-duplicate")
    assert "already active (ordered on 2026-11-06)" in duplicate["summary"]
    assert not cards_for(cards, "muscle-relaxant-class-switch")
