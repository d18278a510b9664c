"""Each window's own edge: the fixtures pin the day before and the day after a threshold, these the
day itself. "In the last N days" takes in the day N days ago (a look-back, an onset); the days of
cyclobenzaprine taken "in the last 30 days" are 30 days, today among them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, ago, cards_for, fixture

UCUM = "http://unitsofmeasure.org"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def history(request: dict[str, Any], key: str) -> dict[str, Any]:
    resource: dict[str, Any] = request["prefetch"][key]["entry"][0]["resource"]
    return resource


def onset(name: str, days: int) -> dict[str, Any]:
    request = fixture(name)
    condition = history(request, "conditions")
    for field in ("onsetDateTime", "onsetPeriod", "recordedDate"):
        condition.pop(field, None)
    condition["onsetDateTime"] = ago(days)
    return request


def indicator(client: TestClient, request: dict[str, Any], rule: str) -> str | None:
    cards = cards_for(client.post(SELECT, json=request).json(), rule)
    return cards[0]["indicator"] if cards else None


@pytest.mark.parametrize(("days", "expected"), [(90, "critical"), (91, None)])
def test_an_acute_mi_90_days_ago_is_in_its_window(client: TestClient, days: int, expected: str | None) -> None:
    request = onset("cyclobenzaprine-contraindicated-condition/fires-acute-mi-onset-89-days-ago.json", days)
    assert indicator(client, request, "cyclobenzaprine-contraindicated-condition") == expected


@pytest.mark.parametrize(("days", "expected"), [(30, "critical"), (31, "warning")])
def test_a_cauda_equina_30_days_ago_is_recent(client: TestClient, days: int, expected: str) -> None:
    request = onset("back-pain-red-flag/fires-cauda-equina-onset-29-days-critical-mri.json", days)
    assert indicator(client, request, "back-pain-red-flag") == expected


@pytest.mark.parametrize(("days", "expected"), [(365, None), (366, "warning")])
def test_an_mri_365_days_ago_is_recent_enough(client: TestClient, days: int, expected: str | None) -> None:
    request = fixture("refractory-spasm-imaging/silent-recent-mri.json")
    history(request, "imaging")["authoredOn"] = ago(days)
    assert indicator(client, request, "refractory-spasm-imaging") == expected


@pytest.mark.parametrize(("days", "expected"), [(365, "warning"), (366, None)])
def test_an_mao_inhibitor_ordered_365_days_ago_is_in_the_look_back(
    client: TestClient, days: int, expected: str | None
) -> None:
    request = fixture("cyclobenzaprine-maoi/fires-maoi-stop-date-unknown-v2-warning.json")
    history(request, "medications")["authoredOn"] = ago(days)
    assert indicator(client, request, "cyclobenzaprine-maoi") == expected


@pytest.mark.parametrize(("days", "expected"), [(90, "info"), (91, None)])
def test_a_course_begun_90_days_ago_is_a_prior_course(client: TestClient, days: int, expected: str | None) -> None:
    request = fixture("muscle-relaxant-class-switch/fires-cyclobenzaprine-again.json")
    history(request, "medications")["authoredOn"] = ago(days)
    assert indicator(client, request, "muscle-relaxant-class-switch") == expected


@pytest.mark.parametrize(("last_day", "summary"), [(29, "1 taken + 21 planned"), (30, None)])
def test_a_course_that_ended_30_days_ago_is_outside_the_30_days(
    client: TestClient, last_day: int, summary: str | None
) -> None:
    request = fixture("cyclobenzaprine-duration/fires-cumulative-prior-course.json")
    prior = history(request, "medications")
    prior.update(status="completed", authoredOn=ago(last_day + 9))
    del prior["dispenseRequest"]
    prior["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {
        "start": ago(last_day + 9),
        "end": ago(last_day),
    }
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dispenseRequest"]["expectedSupplyDuration"]["value"] = 21
    cards = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-duration")
    assert [card["summary"].split(": ")[-1] for card in cards] == ([summary] if summary else [])


@pytest.mark.parametrize(("days", "expected"), [(13, "critical"), (14, "warning")])
def test_a_listed_mao_inhibitor_whose_supply_ended_14_days_ago_is_past_the_washout(
    client: TestClient, days: int, expected: str
) -> None:
    """Still listed active: past the washout it asks for the last dose, inside it is critical."""
    request = fixture("cyclobenzaprine-maoi/fires-maoi-stop-date-unknown-v2-warning.json")
    prior = history(request, "medications")
    prior.update(status="active", authoredOn=ago(days + 29))
    prior["dispenseRequest"] = {"expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"}}
    assert indicator(client, request, "cyclobenzaprine-maoi") == expected


@pytest.mark.parametrize(("days", "red_flag", "low_value"), [(90, "warning", None), (91, None, "info")])
def test_a_fracture_90_days_ago_is_current(
    client: TestClient, days: int, red_flag: str | None, low_value: str | None
) -> None:
    request = onset("back-pain-red-flag/fires-fracture-s32-010d-subsequent-encounter-60-days.json", days)
    assert indicator(client, request, "back-pain-red-flag") == red_flag
    request = fixture("low-value-back-therapy/fires-lumbar-orthosis-old-fracture-s32-010d-v2.json")
    for entry in request["prefetch"]["conditions"]["entry"]:
        if entry["resource"]["code"]["coding"][0]["code"].startswith("S32"):
            entry["resource"]["onsetDateTime"] = ago(days)
    assert indicator(client, request, "low-value-back-therapy") == low_value


@pytest.mark.parametrize(("days", "said"), [(27, False), (28, True)])
def test_rehabilitation_is_named_from_28_days(client: TestClient, days: int, said: bool) -> None:
    request = onset("nonpharmacologic-first-line/fires-back-pain-28-days-adds-rehabilitation.json", days)
    [card] = cards_for(client.post(SELECT, json=request).json(), "nonpharmacologic-first-line")
    assert ("rehabilitation" in card["detail"]) is said


@pytest.mark.parametrize(("days", "expected"), [(28, None), (29, "warning")])
def test_a_spasm_begun_28_days_ago_is_still_acute(client: TestClient, days: int, expected: str | None) -> None:
    """An acute spasm silences the chronic-pain warning; at 29 days it no longer counts as acute."""
    request = fixture("muscle-relaxant-chronic-pain/silent-fibromyalgia-with-acute-spasm.json")
    spasm = request["prefetch"]["conditions"]["entry"][1]["resource"]
    for field in ("onsetDateTime", "onsetPeriod", "recordedDate"):
        spasm.pop(field, None)
    spasm["onsetDateTime"] = ago(days)
    assert indicator(client, request, "muscle-relaxant-chronic-pain") == expected


@pytest.mark.parametrize(("born", "beers"), [("1961-11-21", True), ("1961-11-22", False)])
def test_chronic_pain_names_the_beers_cautions_from_the_65th_birthday(
    client: TestClient, born: str, beers: bool
) -> None:
    request = fixture("muscle-relaxant-chronic-pain/fires-chronic-low-back-pain-age-70-beers-cautions.json")
    request["prefetch"]["patient"]["birthDate"] = born
    [card] = cards_for(client.post(SELECT, json=request).json(), "muscle-relaxant-chronic-pain")
    assert ("Beers" in card["detail"]) is beers


@pytest.mark.parametrize(("days", "listed"), [(13, False), (14, True), (90, True), (91, False)])
def test_a_prior_relaxant_course_counts_as_refractory_from_14_to_90_days(
    client: TestClient, days: int, listed: bool
) -> None:
    """Back pain for 60 days makes the card either way; the prior course is named in its 14–90 days."""
    request = fixture("refractory-spasm-imaging/fires-info-back-pain-51-days.json")
    course = fixture("refractory-spasm-imaging/fires-info-prior-course-60-days-ago.json")
    request["prefetch"]["medications"] = course["prefetch"]["medications"]
    history(request, "medications")["authoredOn"] = ago(days)
    [card] = cards_for(client.post(SELECT, json=request).json(), "refractory-spasm-imaging")
    assert ("A prior" in card["detail"]) is listed
