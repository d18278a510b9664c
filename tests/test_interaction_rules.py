"""The interaction rules say what v2 asks of them, beyond firing (tests/test_rules.py counts the
cards): which variant, which evidence, which order carries the card, and what it removes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, cards_for, fixture, hook_url, rule_ids


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def _card(client: TestClient, name: str) -> dict[str, Any]:
    rule = name.split("/")[0]
    request = fixture(name)
    body = client.post(hook_url(request), json=request).json()
    [card] = cards_for(body, rule)
    return card


def _links(card: dict[str, Any]) -> set[str]:
    return {link["label"] for link in card.get("links", [])}


def _removes(card: dict[str, Any]) -> list[str]:
    return [a["resourceId"] for s in card.get("suggestions", []) for a in s["actions"] if a["type"] == "delete"]


def test_maoi_stop_date_unknown_is_a_warning_without_suggestion(client: TestClient) -> None:
    card = _card(client, "cyclobenzaprine-maoi/fires-maoi-stop-date-unknown-v2-warning.json")
    assert card["indicator"] == "warning"
    assert "ordered on 2026-06-01" in card["summary"] and "stop date unknown" in card["summary"]
    assert not card.get("suggestions")


@pytest.mark.parametrize("status", ["active", "on-hold"])
def test_an_maoi_still_listed_whose_supply_ended_asks_for_the_last_dose(client: TestClient, status: str) -> None:
    """Listed, its 30-day planned course ended 52 days ago: taken still (or again), or stopped unsaid. The
    card says what the list says and what the supply says, and asks; it removes nothing."""
    request = fixture("cyclobenzaprine-maoi/fires-maoi-active-planned-end-passed-confirm-last-dose.json")
    request["prefetch"]["medications"]["entry"][0]["resource"]["status"] = status
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-maoi")
    listed = status.replace("-", " ")
    assert card["indicator"] == "warning" and not card.get("suggestions")
    assert card["summary"] == (
        f"MAO inhibitor phenelzine still listed {listed}, planned course ended 2026-09-30: "
        "confirm ≥ 14 days since the last dose"
    )
    assert (
        f"(ordered on 2026-09-01, still listed {listed}; planned course ended 2026-09-30, 52 days ago)"
        in card["detail"]
    )


@pytest.mark.parametrize(
    ("authored", "status", "indicator", "said"),
    [
        # Written as late as October allows, its 30 days run to 29 November: it may be taken now.
        (
            "2026-10",
            "active",
            "critical",
            "(listed active, ordered in 2026-10, day not recorded: its supply may run to ",
        ),
        # Written as late as August allows, its planned course ended by 29 September: the last dose asked.
        ("2026-08", "active", "warning", "planned course ended by 2026-09-29"),
        # Stopped, no duration: the last dose asked, and why.
        ("2026-05", "stopped", "warning", "(ordered in 2026-05, day not recorded, stopped; no duration or stop date"),
    ],
)
def test_an_maoi_ordered_in_a_month_alone_is_read_for_the_days_it_may_have_been_written(
    client: TestClient, authored: str, status: str, indicator: str, said: str
) -> None:
    """A pharmacist's review: a listed MAO inhibitor whose supply may run today is current
    (critical), not a last dose to ask about; one whose planned course ended by a day says "by"."""
    request = fixture("cyclobenzaprine-maoi/fires-maoi-active-planned-end-passed-confirm-last-dose.json")
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    order["authoredOn"], order["status"] = authored, status
    if status == "stopped":
        del order["dispenseRequest"]
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-maoi")
    assert card["indicator"] == indicator
    assert said in card["summary"] + card["detail"]


@pytest.mark.parametrize("where", ["authoredOn", "boundsPeriod", "validityPeriod"])
def test_an_maoi_course_starting_in_a_year_alone_asks_for_the_last_dose_wherever_its_start_is(
    client: TestClient, where: str
) -> None:
    """The pharmacist's: the start read from a dosing or a validity period written "2026" was read
    from 1 January as the written date had been, and the card was lost the same way."""
    request = fixture("cyclobenzaprine-maoi/fires-maoi-ordered-in-a-year-alone-may-be-recent-warning.json")
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    if where != "authoredOn":
        del order["authoredOn"]
    if where == "boundsPeriod":
        order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": "2026"}
    elif where == "validityPeriod":
        order["dispenseRequest"]["validityPeriod"] = {"start": "2026"}
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-maoi")
    assert card["indicator"] == "warning"
    assert "(ordered in 2026, day not recorded), stop date unknown" in card["summary"]


SUPPLY_10_DAYS = {
    "expectedSupplyDuration": {"value": 10, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}
}


@pytest.mark.parametrize(
    ("case", "indicator", "said"),
    [
        # A recorded end stays where it is: the start's month does not move it (it read "may have
        # run to 2026-11-19", a critical card on an order whose end was recorded).
        ("listed, end recorded", "warning", "dosing ended 2026-10-20: confirm"),
        ("stopped, end recorded", None, ""),
        # Linezolid listed, written in November for 10 days: it may run today (it had no card).
        ("linezolid listed", "critical", "(listed active, ordered in 2026-11, day not recorded: its supply may run to"),
        # Written on 25 October in full, its dosing from "November": the start is the month's.
        ("dosing start a month alone", "warning", "(ordered in 2026-11, day not recorded), stop date unknown"),
    ],
)
def test_a_partial_start_is_read_for_what_was_recorded_and_no_more(
    client: TestClient, case: str, indicator: str | None, said: str
) -> None:
    """A review of the partial dates: each case as the record says it."""
    request = fixture("cyclobenzaprine-maoi/fires-maoi-active-planned-end-passed-confirm-last-dose.json")
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    repeat = order["dosageInstruction"][0]["timing"]["repeat"]
    if case.endswith("end recorded"):
        del order["authoredOn"], order["dispenseRequest"]
        repeat["boundsPeriod"] = {"start": "2026-10", "end": "2026-10-20"}
        order["status"] = "active" if case.startswith("listed") else "completed"
    elif case == "linezolid listed":
        linezolid = fixture("cyclobenzaprine-maoi/silent-linezolid-last-day-yesterday-v2-24-hour-washout.json")
        order.update(linezolid["prefetch"]["medications"]["entry"][0]["resource"])
        del order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]
        order.update(status="active", authoredOn="2026-11", dispenseRequest=SUPPLY_10_DAYS)
    else:
        supply = {**SUPPLY_10_DAYS["expectedSupplyDuration"], "value": 5}  # from the 1st: over 16 days ago
        order.update(status="completed", authoredOn="2026-10-25", dispenseRequest={"expectedSupplyDuration": supply})
        repeat["boundsPeriod"] = {"start": "2026-11"}
    cards = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-maoi")
    assert [card["indicator"] for card in cards] == ([indicator] if indicator else [])
    assert not cards or said in cards[0]["summary"] + cards[0]["detail"]


def test_a_course_that_may_run_still_is_the_duplicates_not_a_repeat_course(client: TestClient) -> None:
    """Cyclobenzaprine written in November for 7 days may run still: "already active" on the
    duplicate card, not a course taken and over on the class-switch card as well."""
    request = fixture("muscle-relaxant-duplicate/fires-same-drug-active-v2-renewal-or-duplicate.json")
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    order.update(status="completed", authoredOn="2026-11")
    order["dispenseRequest"]["expectedSupplyDuration"]["value"] = 7
    codes = rule_ids(client.post(SELECT, json=request).json())
    assert "muscle-relaxant-duplicate" in codes and "muscle-relaxant-class-switch" not in codes


def test_an_maoi_still_listed_whose_supply_ended_inside_the_washout_is_not_said_last_taken(
    client: TestClient,
) -> None:
    """Critical: the planned course ended 13 days ago. Nothing on record says when it was last taken."""
    request = fixture("cyclobenzaprine-maoi/fires-maoi-active-planned-end-passed-confirm-last-dose.json")
    request["prefetch"]["medications"]["entry"][0]["resource"]["authoredOn"] = "2026-10-10"
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-maoi")
    assert card["indicator"] == "critical"
    assert "(listed active, planned course ended 2026-11-08, 13 days ago)" in card["detail"]


def test_an_maoi_still_listed_whose_dosing_period_ended_inside_the_washout_says_dosing(client: TestClient) -> None:
    """A pharmacist's read: "planned course ended" overstated a dosing period's end the record gives."""
    request = fixture("cyclobenzaprine-maoi/fires-maoi-active-planned-end-passed-confirm-last-dose.json")
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": "2026-10-10", "end": "2026-11-08"}
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-maoi")
    assert card["indicator"] == "critical"
    assert "(listed active, dosing ended 2026-11-08, 13 days ago)" in card["detail"]


@pytest.mark.parametrize(
    ("authored", "said"),
    [
        (
            "2026-11-08",
            "(completed, ordered on 2026-11-08, no duration recorded: an assumed 14-day course would end today)",
        ),
        (
            "2026-11-15",
            "(completed, ordered on 2026-11-15, no duration recorded: an assumed 14-day course would run to 2026-11-28)",
        ),
    ],
)
def test_a_finished_linezolid_whose_length_is_assumed_is_said_so(client: TestClient, authored: str, said: str) -> None:
    """A pharmacist's read: "last taken" or "taken now" claims a dose the record never saw. A
    completed order with no duration runs 14 days by assumption (§1), and the card says it."""
    request = fixture(
        "cyclobenzaprine-maoi/silent-linezolid-unknown-duration-assumed-course-ended-v2-24-hour-washout.json"
    )
    request["prefetch"]["medications"]["entry"][0]["resource"]["authoredOn"] = authored
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-maoi")
    assert card["indicator"] == "critical"
    assert f"**linezolid 600 MG Oral Tablet {said}**" in card["detail"]


LISINOPRIL = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076"}]}


@pytest.mark.parametrize("case", ["another-drug", "the-drafts-copy", "a-co-draft-of-a-drug-not-read"])
def test_a_history_order_under_a_drafts_id_is_its_copy_only_when_it_orders_the_same_drug(
    client: TestClient, case: str
) -> None:
    """A hunt's finding: a client numbering its drafts as a server numbers its orders (1, 2, …)
    lost the phenelzine order sharing a draft's id, and the critical card with it; the review's:
    so did one sharing the id of a draft of a drug no rule reads (lisinopril, in an order set).
    An order of the draft's own drug under its id is the draft as the server holds it."""
    request = fixture("cyclobenzaprine-maoi/fires-phenelzine-active.json")
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["id"], request["context"]["selections"] = "1", ["MedicationRequest/1"]
    history = request["prefetch"]["medications"]["entry"][0]["resource"]
    history["id"] = "1"
    if case == "the-drafts-copy":
        history["medicationCodeableConcept"] = draft["medicationCodeableConcept"]
    elif case == "a-co-draft-of-a-drug-not-read":
        co_draft = {**copy.deepcopy(draft), "id": "2", "medicationCodeableConcept": LISINOPRIL}
        request["context"]["draftOrders"]["entry"].append({"resource": co_draft})
        history["id"] = "2"
    body = client.post(SELECT, json=request).json()
    assert bool(cards_for(body, "cyclobenzaprine-maoi")) is (case != "the-drafts-copy")
    assert not cards_for(body, "muscle-relaxant-duplicate")


def test_maoi_critical_cites_the_linezolid_communication_only_for_linezolid(client: TestClient) -> None:
    linezolid = _card(client, "cyclobenzaprine-maoi/fires-linezolid-last-day-today-v2-24-hour-washout.json")
    phenelzine = _card(client, "cyclobenzaprine-maoi/fires-maoi-last-day-13-days-ago-v2-inclusive-end.json")
    safinamide = _card(client, "cyclobenzaprine-maoi/fires-safinamide-active-v2.json")
    assert linezolid["indicator"] == phenelzine["indicator"] == "critical"
    assert any("linezolid" in label for label in _links(linezolid))
    assert not any("linezolid" in label for label in _links(phenelzine))
    assert any("safinamide" in label for label in _links(safinamide))
    assert "13 days ago" in phenelzine["detail"]
    assert _removes(phenelzine) == ["MedicationRequest/request-123"]


def test_serotonergic_tramadol_adds_the_seizure_risk(client: TestClient) -> None:
    tramadol = _card(client, "cyclobenzaprine-serotonergic/fires-tramadol-in-draft-orders-v2-seizure-warning.json")
    sertraline = _card(client, "cyclobenzaprine-serotonergic/fires-sertraline-active.json")
    assert "seizure" in tramadol["detail"] and "seizure" not in sertraline["detail"]


def test_cns_depressant_cites_only_the_evidence_that_applies(client: TestClient) -> None:
    opioid = _card(client, "muscle-relaxant-cns-depressant/fires-oxycodone-active.json")
    gabapentin = _card(client, "muscle-relaxant-cns-depressant/fires-gabapentin-active-baclofen.json")
    older = _card(client, "muscle-relaxant-cns-depressant/fires-age-70-opioid-and-gabapentinoid-beers.json")
    assert any("opioids with benzodiazepines" in label for label in _links(opioid))
    assert not any("opioids with benzodiazepines" in label for label in _links(gabapentin))
    assert any("gabapentinoid" in label for label in _links(gabapentin))
    assert not any("gabapentinoid" in label for label in _links(opioid))
    assert "Beers" not in opioid["detail"] and "Beers" in older["detail"]
    assert any("Beers" in label for label in _links(older))
    assert opioid["indicator"] == "warning" and not opioid.get("suggestions")


def test_tizanidine_card_both_ways_round_removes_the_order_under_review(client: TestClient) -> None:
    tizanidine = _card(client, "tizanidine-cyp1a2-inhibitor/fires-tizanidine-with-ciprofloxacin-active.json")
    cipro = _card(client, "tizanidine-cyp1a2-inhibitor/fires-ciprofloxacin-ordered-tizanidine-active.json")
    both = _card(client, "tizanidine-cyp1a2-inhibitor/fires-order-sign-both-drafted-card-on-tizanidine.json")
    for card in (tizanidine, cipro, both):
        assert card["indicator"] == "critical"
        assert "tizanidine" in card["summary"] and "ciprofloxacin" in card["summary"]
    assert _removes(tizanidine) == _removes(cipro) == ["MedicationRequest/request-123"]
    assert _removes(both) == ["MedicationRequest/request-123"]  # the tizanidine draft


def test_duplicate_same_drug_asks_renewal_or_duplicate(client: TestClient) -> None:
    card = _card(client, "muscle-relaxant-duplicate/fires-same-drug-active-v2-renewal-or-duplicate.json")
    assert "already active (ordered on 2026-11-14): a renewal or a duplicate?" in card["summary"]
    two = _card(client, "muscle-relaxant-duplicate/fires-order-sign-two-relaxants-card-on-the-second.json")
    assert _removes(two) == ["MedicationRequest/request-456"]


@pytest.mark.parametrize(
    ("status", "supply", "said"),
    [
        ("active", True, "(since 2026-11-14)"),
        ("completed", True, "(completed; course 2026-11-14 to 2026-11-27)"),
        ("completed", False, "(completed; course 2026-11-14 to 2026-11-27, length not recorded: 14 days assumed)"),
        ("on-hold", False, "(on hold; course 2026-11-14 to 2026-11-27, length not recorded: 14 days assumed)"),
        ("stopped", False, "(stopped; course 2026-11-14 to 2026-11-27, length not recorded: 14 days assumed)"),
    ],
)
def test_a_course_counted_as_running_says_its_status_and_how_long(
    client: TestClient, status: str, supply: bool, said: str
) -> None:
    """A completed order whose assumed 14 days run to today was "already active" and named
    "since 2026-11-14" (a physician's review): the card relied on an assumption, and says so,
    and to when; the renewal advice then speaks of a course, not of an order still open (a
    pharmacist's)."""
    request = fixture("muscle-relaxant-duplicate/fires-same-drug-active-v2-renewal-or-duplicate.json")
    prior = request["prefetch"]["medications"]["entry"][0]["resource"]
    prior["status"] = status
    if not supply:
        del prior["dispenseRequest"]
    [card] = cards_for(client.post(SELECT, json=request).json(), "muscle-relaxant-duplicate")
    assert f"On record: **Cyclobenzaprine hydrochloride 10 MG Oral Tablet {said}**." in card["detail"]
    if status == "active":
        assert "already active (ordered on 2026-11-14): a renewal or a duplicate?" in card["summary"]
        assert "end the earlier order" in card["detail"]
    else:
        shown = status.replace("-", " ")
        assert f"(ordered on 2026-11-14) may still be in use ({shown}): a renewal or a duplicate?" in card["summary"]
        assert "stop the earlier course (end its order if still open)" in card["detail"]


def test_a_course_started_in_a_month_alone_is_shown_as_recorded(client: TestClient) -> None:
    """Its first day is the reading (the earliest it may have run), never a date shown: "2026-11",
    not "2026-11-01", in the duplicate's summary and its list of drugs alongside."""
    request = fixture("muscle-relaxant-duplicate/fires-same-drug-active-v2-renewal-or-duplicate.json")
    request["prefetch"]["medications"]["entry"][0]["resource"]["authoredOn"] = "2026-11"
    [card] = cards_for(client.post(SELECT, json=request).json(), "muscle-relaxant-duplicate")
    assert "already active (ordered in 2026-11, day not recorded): a renewal or a duplicate?" in card["summary"]
    assert "(since 2026-11)" in card["detail"] and "2026-11-01" not in card["detail"]


def test_class_switch_names_no_relaxant_at_65_and_over(client: TestClient) -> None:
    older = _card(client, "muscle-relaxant-class-switch/fires-age-70-names-no-relaxant-v2.json")
    younger = _card(client, "muscle-relaxant-class-switch/fires-cyclobenzaprine-again.json")
    tizanidine = _card(client, "muscle-relaxant-class-switch/fires-tizanidine-again-suggests-another-mechanism.json")
    assert "tizanidine" in younger["detail"] and "α2" in younger["detail"]
    assert "tizanidine" not in older["detail"] and "nonpharmacologic" in older["summary"]
    assert "cyclobenzaprine" in tizanidine["detail"]
    assert all(card["indicator"] == "info" for card in (older, younger, tizanidine))


def test_the_mao_inhibitor_card_gives_the_washout_of_the_drugs_it_names(client: TestClient) -> None:
    """A phenelzine card spoke of linezolid's 24 hours, inviting a wrong washout (a pharmacist's
    review): each kind's window is said only when a drug of that kind is named."""
    phenelzine = fixture("cyclobenzaprine-maoi/fires-phenelzine-active.json")
    linezolid = fixture("cyclobenzaprine-maoi/fires-linezolid-in-draft-orders.json")
    [card] = cards_for(client.post(SELECT, json=phenelzine).json(), "cyclobenzaprine-maoi")
    assert "contraindicated with MAO inhibitors and within 14 days of stopping one. " in card["detail"]
    assert "24 hours" not in card["detail"]
    [card] = cards_for(client.post(SELECT, json=linezolid).json(), "cyclobenzaprine-maoi")
    said = "contraindicated with linezolid (a reversible MAO inhibitor) and within 24 hours of the last dose. "
    assert said in card["detail"] and "14 days" not in card["detail"]
    linezolid["prefetch"]["medications"] = phenelzine["prefetch"]["medications"]
    [card] = cards_for(client.post(SELECT, json=linezolid).json(), "cyclobenzaprine-maoi")
    said = (
        "contraindicated with MAO inhibitors: within 14 days of stopping phenelzine, and within 24 hours of the"
        " last dose of linezolid (a reversible MAO inhibitor). "
    )
    assert said in card["detail"]


@pytest.mark.parametrize(
    ("active_written", "summary"),
    [
        ("2026-10-01", "already active (ordered on 2026-10-01): a renewal or a duplicate?"),
        (None, "already on the medication list (no start date): a renewal or a duplicate?"),
    ],
)
def test_an_active_order_speaks_for_the_duplicate_card_beside_a_completed_one(
    client: TestClient, active_written: str | None, summary: str
) -> None:
    """Beside a completed order of 2026-11-14 still running: an active one of 2026-10-01 made the
    card "already active (ordered on 2026-11-14)", the completed one's date; an active one with no
    start date made it "may still be in use (completed)" (a code review)."""
    request = fixture("muscle-relaxant-duplicate/fires-same-drug-active-v2-renewal-or-duplicate.json")
    entries = request["prefetch"]["medications"]["entry"]
    completed = copy.deepcopy(entries[0])
    completed["resource"].update(id="mr-2", status="completed")
    active = entries[0]["resource"]
    active["dispenseRequest"]["expectedSupplyDuration"]["value"] = 90
    if active_written is None:
        del active["authoredOn"]
    else:
        active["authoredOn"] = active_written
    entries.append(completed)
    [card] = cards_for(client.post(SELECT, json=request).json(), "muscle-relaxant-duplicate")
    assert summary in card["summary"]


def test_two_reversible_inhibitors_and_two_irreversible_ones_are_each_said_once(client: TestClient) -> None:
    """Plural words, and names joined by "or": "stopping phenelzine, safinamide, within 24 hours"
    read as a list of three (a code review)."""
    linezolid = fixture("cyclobenzaprine-maoi/fires-linezolid-in-draft-orders.json")
    methylene = fixture("cyclobenzaprine-maoi/fires-methylene-blue-given-today-v2-24-hour-washout.json")
    linezolid["prefetch"]["medications"] = methylene["prefetch"]["medications"]
    [card] = cards_for(client.post(SELECT, json=linezolid).json(), "cyclobenzaprine-maoi")
    assert "(reversible MAO inhibitors) and within 24 hours of the last dose. " in card["detail"]
    phenelzine = fixture("cyclobenzaprine-maoi/fires-phenelzine-active.json")
    safinamide = copy.deepcopy(phenelzine["prefetch"]["medications"]["entry"][0])
    safinamide["resource"].update(
        id="mr-saf",
        medicationCodeableConcept={"text": "safinamide 50 MG Oral Tablet"},
    )
    phenelzine["prefetch"]["medications"]["entry"].append(safinamide)
    linezolid = fixture("cyclobenzaprine-maoi/fires-linezolid-in-draft-orders.json")
    linezolid["prefetch"]["medications"] = phenelzine["prefetch"]["medications"]
    [card] = cards_for(client.post(SELECT, json=linezolid).json(), "cyclobenzaprine-maoi")
    said = "within 14 days of stopping phenelzine or safinamide, and within 24 hours of the last dose of linezolid"
    assert said in card["detail"]


@pytest.mark.parametrize(
    "bounds",
    [("2026-11-14T15:00:00Z", "2026-11-21T15:00:00Z"), ("2026-11-14T20:00:00-06:00", "2026-11-21T08:00:00-06:00")],
    ids=["seven-times-24-hours-ending-today", "evening-to-this-morning"],
)
def test_a_history_course_ending_today_at_any_time_still_runs_today(
    client: TestClient, bounds: tuple[str, str]
) -> None:
    """A ciprofloxacin course written as seven days of 24 hours ends today at 15:00Z: read as
    ending the day before (as a draft's days of use are counted), tizanidine lost its critical
    card on the day a dose may still be on board. A history course runs to its end's own date."""
    request = fixture("tizanidine-cyp1a2-inhibitor/fires-tizanidine-with-ciprofloxacin-active.json")
    cipro = request["prefetch"]["medications"]["entry"][0]["resource"]
    cipro["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = dict(zip(("start", "end"), bounds, strict=True))
    cipro.pop("dispenseRequest")
    [card] = cards_for(client.post(SELECT, json=request).json(), "tizanidine-cyp1a2-inhibitor")
    assert card["indicator"] == "critical"
