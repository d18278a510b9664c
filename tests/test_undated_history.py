"""A history entry a check reads whose date is no date is said, not read as no entry.

An active tizanidine order without a date it began (no ``authoredOn``, or "10/15/2026") was no
course: the duplicate-relaxant card went missing with no word. Still listed, it is now a course
of today whose start is not recorded; finished, the partial-history notice says it. A back pain whose onset was
"10/15/2026" was read with no onset: the refractory-spasm card of its seven weeks went missing.
Each is now said in the partial-history notice (a condition's onset only when no recordedDate
stands in for it). What the
record leaves out (no onset at all, an onset in words) stays the client's choice, as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, fixture, rule_ids
from tests.test_card_volume import ICD10, condition
from tests.test_drug_concept_unread import three_drafts

DUPLICATE = "muscle-relaxant-duplicate/fires-tizanidine-active.json"
REFRACTORY = "refractory-spasm-imaging/fires-info-back-pain-51-days.json"
NOT_A_DATE = ["10/15/2026", "2026-02-30", "", 20261110]
ONSET_UNREAD = (
    "A condition's onset date could not be read: a check that depends on how long it has lasted may be missing."
)


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def history_order(request: dict[str, Any]) -> dict[str, Any]:
    order: dict[str, Any] = request["prefetch"]["medications"]["entry"][0]["resource"]
    return order


def back_pain(request: dict[str, Any]) -> dict[str, Any]:
    condition: dict[str, Any] = request["prefetch"]["conditions"]["entry"][0]["resource"]
    assert "onsetDateTime" in condition and "recordedDate" not in condition
    return condition


NOT_READ = "The patient's history was not read in full: checks may be incomplete"
# The history was read: an order in it has no date to place it by, and the clinician can ask.


def one_undated(drug: str) -> str:
    return f"{drug} on record with no start date: confirm when it was last taken"


def partial_history(body: dict[str, Any], summary: str = NOT_READ) -> dict[str, Any]:
    card = body["cards"][-1]
    assert card["source"]["topic"]["code"] == "partial-history"
    assert card["summary"] == summary
    return card


def undated(request: dict[str, Any], status: str, written: object) -> dict[str, Any]:
    order = history_order(request)
    order["status"] = status
    order["authoredOn"] = written
    if written is None:
        del order["authoredOn"]
    return request


@pytest.mark.parametrize("written", [*NOT_A_DATE, None])
@pytest.mark.parametrize("status", ["completed", "stopped"])
def test_a_finished_order_of_a_relaxant_with_no_date_it_began_is_said(
    module: TestClient, written: object, status: str
) -> None:
    """Finished, it cannot be placed at all: when it ran is what the checks of past courses read."""
    body = answered(module, undated(fixture(DUPLICATE), status, written))
    detail = partial_history(body, one_undated("Tizanidine"))["detail"]
    assert "could be read" not in detail and "review the record" not in detail  # it was read
    assert (
        f"An order has no start date, so the checks that depend on when it was taken could not use it: **tizanidine 2 MG Oral Tablet** ({status}). Confirm when it was last taken."
        in detail
    )
    assert "muscle-relaxant-duplicate" not in rule_ids(body)


# Other drugs a check reads, as the shipped fixtures name them: sertraline, cyclobenzaprine, linezolid.
OTHER_DRUGS = (
    "cyclobenzaprine-serotonergic/fires-sertraline-active.json",
    "muscle-relaxant-duplicate/fires-same-drug-active-v2-renewal-or-duplicate.json",
    "cyclobenzaprine-maoi/silent-linezolid-unknown-duration-assumed-course-ended-v2-24-hour-washout.json",
)


def undated_drugs(others: tuple[str, ...]) -> dict[str, Any]:
    """The completed tizanidine with no start date, and a stopped order of each other fixture's
    drug, undated too."""
    request = undated(fixture(DUPLICATE), "completed", None)
    entries = request["prefetch"]["medications"]["entry"]
    for n, name in enumerate(others, start=2):
        copy = json.loads(json.dumps(entries[0]))
        concept = history_order(fixture(name))["medicationCodeableConcept"]
        copy["resource"].update(id=f"mr-{n}", status="stopped", medicationCodeableConcept=concept)
        entries.append(copy)
    return request


def test_the_notice_names_a_few_undated_orders_and_counts_the_rest(module: TestClient) -> None:
    request = undated_drugs(OTHER_DRUGS)
    drugs = "tizanidine, sertraline, cyclobenzaprine and 1 more"
    summary = f"4 orders on record with no start date ({drugs}): confirm when each was last taken"
    detail = partial_history(answered(module, request), summary)["detail"]
    named = "**tizanidine 2 MG Oral Tablet** (completed); **Sertraline 50 MG Oral Tablet** (stopped); "
    named += "**Cyclobenzaprine hydrochloride 10 MG Oral Tablet** (stopped) and 1 more"
    assert (
        f"Some orders have no start date, so the checks that depend on when they were taken could not use them: {named}. Confirm when each was last taken."
        in detail
    )


@pytest.mark.parametrize("written", [*NOT_A_DATE, None])
@pytest.mark.parametrize(("status", "listed"), [("active", "active"), ("on-hold", "on hold"), ("Active", "active")])
def test_an_order_still_listed_with_no_date_it_began_is_taken_today(
    module: TestClient, written: object, status: str, listed: str
) -> None:
    """Still on the medication list, it is taken (or to be) whenever it began: the duplicate card
    stands and says how the service knows, with no notice (a clinical review's call, 32nd pass)."""
    body = answered(module, undated(fixture(DUPLICATE), status, written))
    assert rule_ids(body) == ["muscle-relaxant-duplicate"]
    others = f"**tizanidine 2 MG Oral Tablet ({listed} on the medication list, start date not recorded)**"
    assert f"Also: {others}." in body["cards"][0]["detail"]


def test_an_order_dated_by_its_dosing_alone_is_a_course_and_no_notice(module: TestClient) -> None:
    """The tolerance kept: a start the dosing or the validity period gives is the course's."""
    request = fixture(DUPLICATE)
    order = history_order(request)
    order["authoredOn"] = "10/15/2026"
    order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": "2026-11-10"}
    assert rule_ids(answered(module, request)) == ["muscle-relaxant-duplicate"]


def test_an_undated_order_of_a_drug_no_check_reads_is_no_notice(module: TestClient) -> None:
    request = fixture(DUPLICATE)
    order = history_order(request)
    del order["authoredOn"]
    order["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361", "display": "amlodipine"}]
    }
    assert rule_ids(answered(module, request)) == []


def test_an_undated_order_beside_what_could_not_be_read_says_both(module: TestClient) -> None:
    """The summary speaks for the worse: a check may be missing. The undated order keeps its line."""
    request = fixture(REFRACTORY)
    back_pain(request)["onsetDateTime"] = "10/15/2026"
    order = history_order(undated(fixture(DUPLICATE), "completed", None))
    request["prefetch"]["medications"]["entry"] = [{"resource": order}]
    detail = partial_history(answered(module, request))["detail"]
    assert ONSET_UNREAD in detail
    assert "**tizanidine 2 MG Oral Tablet** (completed). Confirm when it was last taken." in detail
    assert detail.endswith("review the record before signing.")


@pytest.mark.parametrize("onset", NOT_A_DATE)
@pytest.mark.parametrize("field", ["onsetDateTime", "onsetPeriod"])
def test_a_condition_whose_onset_is_no_date_is_said(module: TestClient, onset: object, field: str) -> None:
    request = fixture(REFRACTORY)
    condition = back_pain(request)
    del condition["onsetDateTime"]
    condition[field] = onset if field == "onsetDateTime" else {"start": onset}
    body = answered(module, request)
    assert "refractory-spasm-imaging" not in rule_ids(body)  # no onset read: no duration
    assert ONSET_UNREAD in partial_history(body)["detail"]
    assert "Not all of the patient's" not in partial_history(body)["detail"]  # the condition itself was read


def test_an_onset_no_date_with_the_recorded_date_standing_in_is_no_notice(module: TestClient) -> None:
    """The recordedDate is read for the onset, as clinical specification §1 says: nothing is
    missing that the specification reads (a clinical review of this stop's first cut)."""
    request = fixture(REFRACTORY)
    condition = back_pain(request)
    condition["onsetDateTime"] = "10/01/2026"
    condition["recordedDate"] = "2026-10-01"
    assert rule_ids(answered(module, request)) == [
        "cyclobenzaprine-duration",
        "refractory-spasm-imaging",
        "nonpharmacologic-first-line",
    ]


@pytest.mark.parametrize("onset", [None, {"onsetString": "since the move"}, {"onsetAge": {"value": 40, "unit": "a"}}])
def test_a_condition_that_records_no_onset_date_is_the_clients_choice(module: TestClient, onset: object) -> None:
    request = fixture(REFRACTORY)
    condition = back_pain(request)
    del condition["onsetDateTime"]
    if isinstance(onset, dict):
        condition.update(onset)
    body = answered(module, request)
    assert "partial-history" not in [card["source"]["topic"]["code"] for card in body["cards"]]
    assert "refractory-spasm-imaging" not in rule_ids(body)


def test_a_cyclobenzaprine_listed_with_no_start_counts_no_days_taken(module: TestClient) -> None:
    """How long it was taken is unknown: 21 days planned stay at the limit (read as a day taken
    today, the limit was passed and the card said "already taken on 1 of the last 30 days")."""
    request = fixture("muscle-relaxant-duplicate/fires-same-drug-listed-start-date-not-recorded.json")
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dispenseRequest"]["expectedSupplyDuration"]["value"] = 21
    body = answered(module, request)
    assert rule_ids(body) == ["muscle-relaxant-duplicate"]
    assert "already on the medication list (no start date)" in body["cards"][0]["summary"]


MAOI = "cyclobenzaprine-maoi/fires-phenelzine-active.json"
LINEZOLID = "cyclobenzaprine-maoi/silent-linezolid-unknown-duration-assumed-course-ended-v2-24-hour-washout.json"


@pytest.mark.parametrize("written", [*NOT_A_DATE, None])
@pytest.mark.parametrize(
    ("status", "indicator", "said"),
    [
        ("active", "critical", "active on the medication list, start date not recorded"),
        ("on-hold", "critical", "on hold on the medication list, start date not recorded"),
        ("stopped", "warning", "stopped, no start or stop date recorded"),
        ("completed", "warning", "completed, no start or stop date recorded"),
    ],
)
def test_an_mao_inhibitor_with_no_date_it_began_is_never_passed_over(
    module: TestClient, written: object, status: str, indicator: str, said: str
) -> None:
    """Listed, it is taken now: contraindicated. Finished, any dose may be recent: the last dose
    is to be confirmed, whatever the look-back (which cannot be read without a date)."""
    card = answered(module, undated(fixture(MAOI), status, written))["cards"][0]
    assert (card["source"]["topic"]["code"], card["indicator"]) == ("cyclobenzaprine-maoi", indicator)
    assert f"MAO inhibitor: **Phenelzine 15 MG Oral Tablet ({said})**." in card["detail"]


# -- no start date, an end on record: placed by its end ------------------------------------------

BOUNDS_END = "cyclobenzaprine-maoi/silent-maoi-bounds-end-only-14-days-ago.json"


def ended_on(request: dict[str, Any], status: str, end: str) -> dict[str, Any]:
    """The history's first order with no date it began and its dosing's last day ``end``."""
    order = history_order(request)
    order.pop("authoredOn", None)
    order["status"] = status
    order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"end": end}
    return request


@pytest.mark.parametrize("end", ["2026-11-07", "2023-01-01"])
def test_a_stopped_mao_inhibitor_with_its_end_alone_recorded_is_read_by_it(module: TestClient, end: str) -> None:
    """Its stop date is on record: past the washout it is no card, as a dated one is, never a
    warning that no stop date was recorded (the review of this change found it said so)."""
    body = answered(module, ended_on(fixture(BOUNDS_END), "stopped", end))
    assert "cyclobenzaprine-maoi" not in rule_ids(body)
    assert (
        "An order has no start date, so the checks that depend on when it was taken could not use it: **Phenelzine 15 MG Oral Tablet** (stopped)."
        in partial_history(body, one_undated("Phenelzine"))["detail"]
    )


def test_a_stopped_mao_inhibitor_ended_inside_the_washout_is_contraindicated(module: TestClient) -> None:
    card = answered(module, ended_on(fixture(BOUNDS_END), "stopped", "2026-11-16"))["cards"][0]
    assert (card["source"]["topic"]["code"], card["indicator"]) == ("cyclobenzaprine-maoi", "critical")
    assert "**Phenelzine 15 MG Oral Tablet (stopped, dosing ended 2026-11-16, 5 days ago)**" in card["detail"]


@pytest.mark.parametrize(
    ("end", "said"),
    [
        ("2023-01-01", "no start date recorded, still listed active; dosing ended 2023-01-01, about 4 years ago"),
        ("2026-08-13", "no start date recorded, still listed active; dosing ended 2026-08-13, about 3 months ago"),
        ("2026-12-31", "active on the medication list, start date not recorded"),
    ],
)
def test_a_listed_mao_inhibitor_is_read_by_its_recorded_end(module: TestClient, end: str, said: str) -> None:
    """Past: the warning of a planned course ended, however long ago (the list says taken); still
    to run: taken now."""
    body = answered(module, ended_on(fixture(BOUNDS_END), "active", end))
    cards = [c for c in body["cards"] if c["source"]["topic"]["code"] == "cyclobenzaprine-maoi"]
    assert [f"({said})**" in c["detail"] for c in cards] == [True]
    assert "partial-history" not in [c["source"]["topic"]["code"] for c in body["cards"]]  # listed: not named


def test_a_stopped_mao_inhibitor_whose_dosing_runs_on_is_contraindicated(module: TestClient) -> None:
    """Stopped, no start date, its dosing planned to next week: when it stopped is not recorded,
    so it may be taken still (as a dated one is read: to its planned end)."""
    card = answered(module, ended_on(fixture(BOUNDS_END), "stopped", "2026-11-30"))["cards"][0]
    assert (card["source"]["topic"]["code"], card["indicator"]) == ("cyclobenzaprine-maoi", "critical")
    assert (
        "**Phenelzine 15 MG Oral Tablet (stopped, stop date not recorded; dosing was planned to run to 2026-11-30)**"
        in card["detail"]
    )


@pytest.mark.parametrize(("end", "fires"), [("2025-01-01", False), ("2026-11-20", False), ("2026-11-21", True)])
def test_a_listed_tizanidine_runs_to_its_recorded_end(module: TestClient, end: str, fires: bool) -> None:
    request = fixture("tizanidine-cyp1a2-inhibitor/fires-ciprofloxacin-ordered-tizanidine-active.json")
    body = answered(module, ended_on(request, "active", end))
    assert ("tizanidine-cyp1a2-inhibitor" in rule_ids(body)) is fires


def test_a_dstu2_stop_date_without_a_written_date_is_kept(module: TestClient) -> None:
    """DSTU2's dateEnded was dropped when no dateWritten came with it: the phenelzine stopped in
    2023 asked for its last dose, "no start or stop date recorded"."""
    request = fixture("fhir-versions/dstu2-cyclobenzaprine-10mg-tid-30-days.json")
    order = request["prefetch"]["medications"]["entry"][1]["resource"]
    del order["dateWritten"]
    order.update(status="completed", dateEnded="2023-01-01")
    order["medicationCodeableConcept"] = fixture(BOUNDS_END)["prefetch"]["medications"]["entry"][0]["resource"][
        "medicationCodeableConcept"
    ]
    assert "cyclobenzaprine-maoi" not in rule_ids(answered(module, request))
    order["dateEnded"] = "2026-11-16"
    assert "cyclobenzaprine-maoi" in rule_ids(answered(module, request))


def test_a_prior_course_with_its_end_alone_recorded_is_no_repeat_course(module: TestClient) -> None:
    """The class switch reads a course begun in the last 90 days: with no start date, it cannot say."""
    request = fixture("muscle-relaxant-class-switch/fires-cyclobenzaprine-again.json")
    order = history_order(request)
    del order["authoredOn"]
    order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"end": "2026-10-01"}
    body = answered(module, request)
    assert "muscle-relaxant-class-switch" not in rule_ids(body)
    assert (
        "An order has no start date, so the checks that depend on when it was taken could not use it: **Cyclobenzaprine"
        in partial_history(body, one_undated("Cyclobenzaprine"))["detail"]
    )


@pytest.mark.parametrize("end", ["2026-10-31", "2026-09-22"])
def test_a_relaxant_course_with_its_end_alone_recorded_dates_no_symptoms_and_no_prior_course(
    module: TestClient, end: str
) -> None:
    """When it began is what both read (a course begun in the last 90 days): its end says neither."""
    request = fixture("refractory-spasm-imaging/fires-prior-course-3-weeks.json")
    order = history_order(request)
    del order["authoredOn"]
    order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"end": end}
    card = next(
        c for c in answered(module, request)["cards"] if c["source"]["topic"]["code"] == "refractory-spasm-imaging"
    )
    assert card["detail"].startswith("Back symptoms for **50 days** (since 2026-10-02)")  # the back pain's onset
    assert "A prior cyclobenzaprine course" not in card["detail"]


@pytest.mark.parametrize(("end", "said"), [("2026-11-16", True), ("2026-10-23", True), ("2026-10-22", False)])
def test_the_duration_card_names_an_undated_course_in_its_window_as_not_counted(
    module: TestClient, end: str, said: bool
) -> None:
    """Ended inside the 30 days (the 23rd of October is the first of them), its days there are
    unknown and the card says which order and asks; ended before, it is outside what the card
    counts. The card asks about it, so no notice names it again (the notice named it, the card
    did not, till the thirty-seventh pass)."""
    request = ended_on(fixture("cyclobenzaprine-duration/fires-cumulative-prior-course.json"), "completed", end)
    request["context"]["draftOrders"]["entry"][0]["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] = 30
    body = answered(module, request)
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "cyclobenzaprine-duration")
    assert card["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned"
    uncounted = (
        f" Also on record: **Cyclobenzaprine hydrochloride 10 MG Oral Tablet** (completed, dosing ended {end}, start "
        "date not recorded). Its days may add to this course: ask when and for how long it was taken."
    )
    assert (uncounted in card["detail"]) is said
    assert ("partial-history" in rule_ids(body)) is not said


def test_the_duration_card_names_each_undated_course_once(module: TestClient) -> None:
    """Three orders with no start date, one of them sent twice: each named once, by the end it
    records (two of one product and status were one name, and one course went unasked: a
    pharmacist's review), and asked of each; none named again by a notice."""
    request = ended_on(
        fixture("cyclobenzaprine-duration/fires-cumulative-prior-course.json"), "completed", "2026-11-16"
    )
    request["context"]["draftOrders"]["entry"][0]["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] = 30
    entries = request["prefetch"]["medications"]["entry"]
    stopped, earlier = json.loads(json.dumps(entries[0])), json.loads(json.dumps(entries[0]))
    stopped["resource"].update(id="stopped", status="stopped")
    earlier["resource"]["id"] = "earlier"
    earlier["resource"]["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["end"] = "2026-11-01"
    entries += [json.loads(json.dumps(entries[0])), stopped, earlier]
    body = answered(module, request)
    [card] = body["cards"]
    assert card["source"]["topic"]["code"] == "cyclobenzaprine-duration"
    name = "**Cyclobenzaprine hydrochloride 10 MG Oral Tablet**"
    assert (
        f" Also on record: {name} (completed, dosing ended 2026-11-01, start date not recorded); {name} (completed, "
        f"dosing ended 2026-11-16, start date not recorded); {name} (stopped, dosing ended 2026-11-16, start date not "
        "recorded). Their days may add to this course: ask when and for how long each was taken."
    ) in card["detail"]


def test_an_order_repeated_in_the_history_is_named_once(module: TestClient) -> None:
    """500 copies of one stopped phenelzine with no date (a history paged twice, a feed's
    repeats): one name on the warning, not three and "497 more"; and of one tizanidine, one
    name on the notice."""
    request = undated(fixture(MAOI), "stopped", None)
    entries = request["prefetch"]["medications"]["entry"]
    for n in range(1, 500):
        copy = json.loads(json.dumps(entries[0]))
        copy["resource"]["id"] = f"maoi-{n + 1}"
        entries.append(copy)
    [warning] = answered(module, request)["cards"]  # it asks about every copy: no notice asks again
    assert (
        "MAO inhibitor: **Phenelzine 15 MG Oral Tablet (stopped, no start or stop date recorded)**."
        in warning["detail"]
    )
    request = undated(fixture(DUPLICATE), "stopped", None)
    entries = request["prefetch"]["medications"]["entry"]
    entries += [{"resource": {**entries[0]["resource"], "id": f"mr-{n}"}} for n in range(2, 501)]
    notice = partial_history(answered(module, request), one_undated("Tizanidine"))
    assert (
        "An order has no start date, so the checks that depend on when it was taken could not use it: **tizanidine 2 MG Oral Tablet** (stopped). Confirm when it was last taken."
        in notice["detail"]
    )


def test_an_undated_mao_inhibitor_the_warning_asks_about_gets_no_notice_too(module: TestClient) -> None:
    """The warning asks for its last dose: a notice asking when it was last taken said it twice
    (a pharmacist's review). A linezolid so recorded, which no card names, keeps its notice."""
    [warning] = answered(module, undated(fixture(MAOI), "stopped", None))["cards"]
    assert warning["source"]["topic"]["code"] == "cyclobenzaprine-maoi"
    request = undated(fixture(MAOI), "completed", None)
    history_order(request)["medicationCodeableConcept"] = history_order(fixture(LINEZOLID))["medicationCodeableConcept"]
    body = answered(module, request)
    assert rule_ids(body) == ["partial-history"]
    partial_history(body, one_undated("Linezolid"))


def test_a_draft_not_checked_beside_an_undated_order_says_both_in_its_summary(module: TestClient) -> None:
    """The summary said "A draft order was not checked: its drug could not be identified: checks
    are incomplete", two colons and no word of the undated order (a code review)."""
    request = three_drafts(None, {"coding": [{"code": "828348"}]})
    request["prefetch"]["medications"]["entry"] = [
        {"resource": history_order(undated(fixture(DUPLICATE), "completed", None))}
    ]
    notice = answered(module, request)["cards"][-1]
    assert notice["summary"] == (
        "A draft order was not checked (drug not identified) and an order on record has no start date: "
        "checks are incomplete"
    )
    assert "**tizanidine 2 MG Oral Tablet** (completed). Confirm when it was last taken." in notice["detail"]


def test_an_undated_mao_inhibitor_whose_warning_is_not_shown_is_in_the_notice(
    module: TestClient, make_client: Callable[..., TestClient]
) -> None:
    """The notice leaves an order to the warning that asks about it only when that warning is
    shown (a code review): dropped under a critical card deleting the same order, or cut by the
    card limit, the warning would leave the phenelzine said nowhere but in a summary."""
    request = undated(fixture(MAOI), "stopped", None)
    mi = condition("mi-1", ICD10, "I21.4", "Non-ST elevation (NSTEMI) myocardial infarction", 10)
    request["prefetch"]["conditions"]["entry"].append(mi)
    cards = answered(module, request)["cards"]
    assert [card["source"]["topic"]["code"] for card in cards] == [
        "cyclobenzaprine-contraindicated-condition",
        "partial-history",
    ]
    partial_history({"cards": cards}, one_undated("Phenelzine"))

    request = undated(fixture(MAOI), "stopped", None)
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    tizanidine = fixture("tizanidine-cyp1a2-inhibitor/fires-tizanidine-with-ciprofloxacin-active.json")
    for n in range(4):  # four critical cards, the ciprofloxacin active: the warning comes after them
        draft = {**tizanidine["context"]["draftOrders"]["entry"][0]["resource"], "id": f"tiz-{n}"}
        request["context"]["draftOrders"]["entry"].append({"resource": draft})
    request["prefetch"]["medications"]["entry"] += tizanidine["prefetch"]["medications"]["entry"]
    cards = answered(make_client(max_cards=4), request)["cards"]
    assert [card["source"]["topic"]["code"] for card in cards] == [
        "tizanidine-cyp1a2-inhibitor",
        "tizanidine-cyp1a2-inhibitor",
        "card-limit",
        "partial-history",
    ]
    partial_history({"cards": cards}, one_undated("Phenelzine"))


def test_five_undated_drugs_are_three_named_and_counted_in_the_summary(module: TestClient) -> None:
    """As the detail names them: three, and a count of the rest."""
    request = undated_drugs(
        (*OTHER_DRUGS, "cyclobenzaprine-maoi/fires-methylene-blue-given-today-v2-24-hour-washout.json")
    )
    drugs = "tizanidine, sertraline, cyclobenzaprine and 2 more"
    summary = f"5 orders on record with no start date ({drugs}): confirm when each was last taken"
    assert (
        "and 2 more. Confirm when each was last taken." in partial_history(answered(module, request), summary)["detail"]
    )


def test_a_draft_not_checked_beside_several_undated_orders_counts_them(module: TestClient) -> None:
    request = three_drafts(None, {"coding": [{"code": "828348"}]})
    first = history_order(undated(fixture(DUPLICATE), "completed", None))
    second = {
        **first,
        "id": "mr-2",
        "medicationCodeableConcept": history_order(fixture(OTHER_DRUGS[0]))["medicationCodeableConcept"],
    }
    request["prefetch"]["medications"]["entry"] = [{"resource": first}, {"resource": second}]
    notice = answered(module, request)["cards"][-1]
    assert notice["summary"] == (
        "A draft order was not checked (drug not identified) and 2 orders on record have no start date: "
        "checks are incomplete"
    )
