"""Card volume and composed suggestions, over HTTP (clinical specification §2): at most one card
per rule per order and one per call for rules about the patient; a critical card deleting an
order silences the others for it and names them; the red-flag and chronic-pain cards subsume
the cards they make redundant; dose changes carry the duration limit; an accepted dose change
keeps its rule quiet for the draft it leaves."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.cli import main
from tests.conftest import (
    FIXTURES,
    NOON,
    SELECT,
    TODAY,
    Clock,
    cards_for,
    fixture,
    for_patient,
    hook_url,
    rule_ids,
)

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
OLDER_ADULT = "cyclobenzaprine-older-adult"
DURATION = "cyclobenzaprine-duration"
CONTAINED_SWAP = "multiple-rules/older-adult-contained-10mg-medication-swap-leaves-no-orphan.json"


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    """One app for the tests that only send requests and read the answers."""
    return module_client


def names(line: str, rule_id: str) -> bool:
    """Whether an "Also flagged" line names a card of the rule: by its summary, whose words
    before the first fact are the rule's own."""
    variants = tomllib.loads((FIXTURES.parent / "cards" / f"{rule_id}.toml").read_text())["variants"]
    openings = {variant["summary"].split("{", 1)[0].strip() for variant in variants.values()}
    return any(opening and opening in line for opening in openings)


def condition(ident: str, system: str, code: str, display: str, days_ago: int) -> dict[str, Any]:
    return {
        "resource": {
            "resourceType": "Condition",
            "id": ident,
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "verificationStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
                ]
            },
            "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
            "subject": {"reference": "Patient/harness-pt-1"},
            "onsetDateTime": (TODAY - timedelta(days=days_ago)).isoformat(),
        }
    }


def sandbox_order(*conditions: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's 10 mg cyclobenzaprine order for a 47-year-old, with these problems on the list."""
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request["prefetch"]["conditions"]["entry"] = list(conditions)
    request["prefetch"]["conditions"]["total"] = len(conditions)
    return request


SCIATICA = condition("sciatica", ICD10, "M54.31", "Sciatica, right side", 60)
LOW_BACK_PAIN = condition("lbp", ICD10, "M54.50", "Low back pain, unspecified", 60)
CAUDA_EQUINA = condition("ces", ICD10, "G83.4", "Cauda equina syndrome", 10)
CHRONIC_LBP = condition("clbp", SNOMED, "278860009", "Chronic low back pain", 200)


def post(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    response = client.post(hook_url(request), json=request)
    assert response.status_code == 200, response.text
    return response.json()


# -- one card per rule per order, one per call for the patient ---------------------------------


def test_each_order_gets_its_own_card_and_the_patient_one_card_per_call(module: TestClient) -> None:
    """Signing two cyclobenzaprine drafts for a 47-year-old with sciatica for 60 days."""
    request = sandbox_order(SCIATICA, LOW_BACK_PAIN)
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    second = copy.deepcopy(request["context"]["draftOrders"]["entry"][0])
    second["resource"]["id"] = "request-456"
    request["context"]["draftOrders"]["entry"].append(second)
    body = post(module, request)
    duration = cards_for(body, DURATION)
    assert len(duration) == 2
    assert {c["suggestions"][0]["actions"][0]["resource"]["id"] for c in duration} == {"request-123", "request-456"}
    assert len(cards_for(body, "refractory-spasm-imaging")) == 1  # about the patient: one per call


def test_cards_come_critical_then_warning_then_info(module: TestClient) -> None:
    for name in ("multiple-rules/stu3-cauda-equina-10-days-mri-as-procedure-request.json", CONTAINED_SWAP):
        indicators = [card["indicator"] for card in post(module, fixture(name))["cards"]]
        assert indicators == sorted(indicators, key=["critical", "warning", "info"].index)


# -- a critical card that deletes the order --------------------------------------------------


def test_a_critical_delete_names_the_checks_it_silenced(module: TestClient) -> None:
    """The AV block is critical and deletes the order: the cards the same order gets without it
    (older adult, serotonergic, duration...) are dropped and named once, by their summaries: what
    a clinician who overrides it keeps of them (a physician's review: titles said no fact)."""
    without_block = post(module, fixture("multiple-rules/av-block-resolved-sertraline-70.json"))
    silenced = [card["summary"] for card in without_block["cards"]]
    assert len(silenced) == 3
    [card] = post(module, fixture("multiple-rules/av-block-sertraline-70.json"))["cards"]
    assert card["indicator"] == "critical"
    assert card["detail"].count("Also flagged:") == 1
    assert "\n\nAlso flagged: " + " ".join(f"{summary}." for summary in silenced) in card["detail"]


def test_a_critical_card_that_deletes_nothing_silences_nothing(module: TestClient) -> None:
    """Recent cauda equina: the critical red-flag card orders an MRI; the duration card stays."""
    body = post(module, sandbox_order(CAUDA_EQUINA))
    assert rule_ids(body)[:1] == ["back-pain-red-flag"]
    assert body["cards"][0]["indicator"] == "critical"
    assert "Also flagged" not in body["cards"][0]["detail"]
    assert DURATION in rule_ids(body)


# -- subsumption ---------------------------------------------------------------------------------


def test_the_red_flag_card_subsumes_the_mri_and_heat_and_exercise_cards(module: TestClient) -> None:
    before = rule_ids(post(module, sandbox_order(SCIATICA, LOW_BACK_PAIN)))
    assert {"refractory-spasm-imaging", "nonpharmacologic-first-line"} <= set(before)
    after = rule_ids(post(module, sandbox_order(SCIATICA, LOW_BACK_PAIN, CAUDA_EQUINA)))
    assert "back-pain-red-flag" in after
    assert not {"refractory-spasm-imaging", "nonpharmacologic-first-line"} & set(after)


def test_the_chronic_pain_card_subsumes_the_heat_and_exercise_card(module: TestClient) -> None:
    acute = rule_ids(post(module, sandbox_order(condition("lbp", ICD10, "M54.50", "Low back pain", 5))))
    assert "nonpharmacologic-first-line" in acute
    chronic = rule_ids(post(module, sandbox_order(CHRONIC_LBP)))
    assert "muscle-relaxant-chronic-pain" in chronic
    assert "nonpharmacologic-first-line" not in chronic


# -- suggestions compose -----------------------------------------------------------------------


def test_the_5_mg_swap_carries_the_duration_limit_and_drops_the_old_medication(module: TestClient) -> None:
    """70 years old, 10 mg three times a day for 30 days (90 tablets), as a contained Medication."""
    body = post(module, fixture(CONTAINED_SWAP))
    [older] = cards_for(body, OLDER_ADULT)
    swap = next(s for s in older["suggestions"] if s["actions"][0]["type"] == "update")
    assert swap["label"].endswith("(limited to 21 days)")
    assert swap["actions"][0]["description"] == swap["label"]
    resource = swap["actions"][0]["resource"]
    assert resource["medicationCodeableConcept"]["coding"][0]["code"] == "828320"
    assert "contained" not in resource and "medicationReference" not in resource
    assert resource["dosageInstruction"][0]["timing"]["repeat"]["boundsDuration"]["value"] == 21
    assert resource["dispenseRequest"]["expectedSupplyDuration"]["value"] == 21
    assert resource["dispenseRequest"]["quantity"]["value"] == 63  # 1 tablet three times a day, 21 days
    # The duration card's own update keeps the ordered drug, and so its contained Medication.
    [duration] = cards_for(body, DURATION)
    kept = duration["suggestions"][0]["actions"][0]["resource"]
    assert kept["medicationReference"] == {"reference": "#med1", "display": kept["contained"][0]["code"]["text"]}
    assert kept["dispenseRequest"]["quantity"]["value"] <= 90


def test_an_update_keeps_the_contained_resources_reached_from_the_order_and_drops_the_rest(
    module: TestClient,
) -> None:
    """A note refers to the first of a chain of contained resources, each referring to the next;
    one refers to nothing. A chain of 100, a draft the R4 model still checks: one of thousands is
    offered no update (tests/test_large_drafts.py), though the update is built and walked."""
    request = fixture(CONTAINED_SWAP)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    chain = [_basic(f"b{i}", subject={"reference": f"#b{i + 1}"}) for i in range(99)] + [_basic("b99")]
    draft["contained"] += [*chain, _basic("orphan")]
    draft["note"] = [{"authorReference": {"reference": "#b0"}, "text": "see the chain"}]
    [duration] = cards_for(post(module, request), DURATION)
    kept = duration["suggestions"][0]["actions"][0]["resource"]["contained"]
    assert [c["id"] for c in kept] == ["med1", *(f"b{i}" for i in range(100))]


def _basic(id_: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Basic", "id": id_, "code": {"text": "a note's source"}, **fields}


def test_without_a_duration_card_the_swap_is_not_limited(module: TestClient) -> None:
    request = fixture(CONTAINED_SWAP)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dispenseRequest"] = {"expectedSupplyDuration": {"value": 14, "unit": "days", "code": "d"}}
    body = post(module, request)
    assert DURATION not in rule_ids(body)
    [older] = cards_for(body, OLDER_ADULT)
    swap = next(s for s in older["suggestions"] if s["actions"][0]["type"] == "update")
    assert "limited" not in swap["label"]
    assert swap["actions"][0]["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] == 14


def test_an_update_never_dispenses_more_than_the_draft(module: TestClient) -> None:
    """1-2 tablets every 4-6 hours: 12 a day for 21 days would be 252 tablets; 40 were ordered."""
    body = post(
        module, fixture("multiple-rules/prn-1-2-tablets-every-4-6-hours-40-dispensed-quantity-never-raised.json")
    )
    [card] = cards_for(body, DURATION)
    assert card["suggestions"][0]["actions"][0]["resource"]["dispenseRequest"]["quantity"]["value"] == 40


# -- an accepted dose change keeps its rule quiet for the draft it leaves ----------------------


def _accept(client: TestClient, card: dict[str, Any], suggestion: dict[str, Any]) -> None:
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion["uuid"]}],
        "outcomeTimestamp": "2026-11-21T10:15:00.000Z",
    }
    assert client.post(f"{SELECT}/feedback", json={"feedback": [item]}).status_code == 200


def _as_the_sandbox_applies(request: dict[str, Any], suggestion: dict[str, Any]) -> dict[str, Any]:
    """The sandbox applies only the suggestion's medication coding to the draft, and calls again."""
    request = copy.deepcopy(request)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    for key in ("medicationReference", "contained"):
        draft.pop(key, None)
    draft["medicationCodeableConcept"] = suggestion["actions"][0]["resource"]["medicationCodeableConcept"]
    return request


@pytest.mark.parametrize(("accepted", "quiet"), [("update", True), ("delete", False)])
def test_an_accepted_dose_change_keeps_its_rule_quiet_for_that_draft(
    client: TestClient, accepted: str, quiet: bool
) -> None:
    """Accepting the 5 mg swap: the 5 mg draft it leaves gets no older-adult info card (the
    clinician has just seen the warning). Accepting the removal quiets nothing for a 5 mg
    draft the clinician picks afterwards on the same draft id."""
    request = fixture(CONTAINED_SWAP)
    [card] = cards_for(post(client, request), OLDER_ADULT)
    swap = next(s for s in card["suggestions"] if s["actions"][0]["type"] == "update")
    _accept(client, card, next(s for s in card["suggestions"] if s["actions"][0]["type"] == accepted))
    low_dose = _as_the_sandbox_applies(request, swap)
    assert bool(cards_for(post(client, low_dose), OLDER_ADULT)) is not quiet
    # Another patient's identical draft is not quieted.
    other = for_patient(copy.deepcopy(low_dose), "someone-else")
    assert cards_for(post(client, other), OLDER_ADULT)


def test_the_swap_keeps_its_rule_quiet_that_day_only(make_client: Callable[..., TestClient]) -> None:
    """The same draft is the same draft id on the same (UTC) day: the 5 mg draft the swap left
    gets no info card for the rest of that day; a 5 mg draft on that id the next day (the sandbox
    names every draft request-123) is a new order and gets it."""
    clock = Clock(NOON)
    client = make_client(clock=clock)
    request = fixture(CONTAINED_SWAP)
    [card] = cards_for(post(client, request), OLDER_ADULT)
    swap = next(s for s in card["suggestions"] if s["actions"][0]["type"] == "update")
    _accept(client, card, swap)
    low_dose = _as_the_sandbox_applies(request, swap)
    clock.set(minutes=11 * 60 + 59)  # 23:59 UTC
    assert not cards_for(post(client, low_dose), OLDER_ADULT)
    clock.set(days=1)
    [shown] = cards_for(post(client, low_dose), OLDER_ADULT)
    assert shown["indicator"] == "info"


def test_the_stateless_evaluate_shows_the_low_dose_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], module: TestClient
) -> None:
    """``cds-service evaluate`` has no feedback: the 5 mg draft gets the info card."""
    [card] = cards_for(post(module, fixture(CONTAINED_SWAP)), OLDER_ADULT)
    swap = next(s for s in card["suggestions"] if s["actions"][0]["type"] == "update")
    path = tmp_path / "low-dose.json"
    path.write_text(json.dumps(_as_the_sandbox_applies(fixture(CONTAINED_SWAP), swap)))
    assert main(["evaluate", str(path), "--today", TODAY.isoformat()]) == 0
    [shown] = cards_for(json.loads(capsys.readouterr().out), OLDER_ADULT)
    assert shown["indicator"] == "info"


def test_a_critical_delete_does_not_name_what_a_silenced_card_would_have_subsumed(module: TestClient) -> None:
    """Hepatic failure deletes the order; the bone-metastasis red flag is named among the checks
    it silenced, the MRI and heat-and-exercise cards it would have subsumed are not."""
    request = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    metastasis = condition("c79", ICD10, "C79.51", "Secondary malignant neoplasm of bone", 100)
    request["prefetch"]["conditions"]["entry"] += [SCIATICA, LOW_BACK_PAIN, metastasis]
    [card] = post(module, request)["cards"]
    flagged = card["detail"].split("\n\nAlso flagged: ")[1]
    assert names(flagged, "back-pain-red-flag")
    assert not names(flagged, "refractory-spasm-imaging")
    assert not names(flagged, "nonpharmacologic-first-line")
