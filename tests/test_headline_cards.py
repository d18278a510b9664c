"""The issue's headline scenarios, asserted card by card, suggestion by suggestion."""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.app import create_app
from cds_service.content.cards import CardContentError
from cds_service.settings import Settings
from tests.conftest import FIXTURES, NOON, SELECT, SIGN, Clock, cards_for, fixture, hook_url, rule_ids
from tests.fhir_server import FhirTestServer
from tests.test_card_volume import names
from tools.golden import hook_requests

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    """One app for the module: its tests only send requests and read the answers."""
    return module_client


def only_action(card: dict[str, Any]) -> dict[str, Any]:
    assert card["selectionBehavior"] == "at-most-one"
    [suggestion] = card["suggestions"]
    assert suggestion["uuid"] and suggestion["label"]
    [action] = suggestion["actions"]
    assert action["description"]
    return action


def assert_common(card: dict[str, Any], rule_id: str, indicator: str) -> None:
    assert card["indicator"] == indicator
    assert card["source"]["topic"] == {
        "system": "urn:back-spasm-cds:rule",
        "code": rule_id,
        "display": card["source"]["topic"]["display"],
    }
    assert len(card["summary"]) < 140
    assert card["uuid"]
    # Evidence cited once: link buttons, and by citation at the end of the detail only when it has no link.
    assert card.get("links") or "\n\nEvidence: " in card["detail"]
    assert not any(link["url"] in card["detail"] for link in card.get("links", []))
    if indicator != "info":
        assert all(reason["display"] for reason in card["overrideReasons"])


def test_sandbox_capture_gets_duration_warning_with_21_day_update(
    client: TestClient, fhir_server: FhirTestServer
) -> None:
    """The request exactly as captured; its missing prefetch keys come from a real FHIR server."""
    request = fixture("sandbox/order-select-r4.json")
    request["fhirServer"] = fhir_server.base
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    # The captured patient is 78 and the order's reason is low back pain: three cards in all.
    body = response.json()
    assert rule_ids(body) == ["cyclobenzaprine-older-adult", "cyclobenzaprine-duration", "nonpharmacologic-first-line"]
    [card] = cards_for(body, "cyclobenzaprine-duration")
    assert_common(card, "cyclobenzaprine-duration", "warning")
    assert "30 days" in card["summary"] and "30-day supply" in card["detail"]
    action = only_action(card)
    assert card["suggestions"][0]["isRecommended"] is True
    assert action["type"] == "update"
    resource = action["resource"]
    MedicationRequest.model_validate(resource)
    assert resource["id"] == "request-123"
    assert resource["dosageInstruction"][0]["timing"]["repeat"]["boundsDuration"]["value"] == 21
    assert resource["dispenseRequest"]["expectedSupplyDuration"] == {
        "value": 21,
        "unit": "days",
        "system": "http://unitsofmeasure.org",
        "code": "d",
    }
    assert resource["dispenseRequest"]["numberOfRepeatsAllowed"] == 0
    assert resource["dispenseRequest"]["quantity"]["value"] == 21  # one pill a day
    # Everything else is the clinician's draft, unchanged.
    assert (
        resource["medicationCodeableConcept"]
        == request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"]
    )
    assert {s.path.split("?")[0] for s in fhir_server.seen} == {
        "/fhir/Condition",
        "/fhir/MedicationRequest",
        "/fhir/ServiceRequest",
        "/fhir/metadata",
    }


def test_hepatic_failure_gets_one_critical_card_that_deletes_the_order(client: TestClient) -> None:
    body = client.post(
        SELECT, json=fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    ).json()
    # The duration warning for the same order is dropped: the critical card deletes that order.
    [card] = body["cards"]
    assert_common(card, "cyclobenzaprine-hepatic-impairment", "critical")
    assert "Chronic hepatic failure without coma (K72.10)" in card["detail"]
    assert "since 2024-03-02" in card["detail"]
    action = only_action(card)
    assert action == {
        "type": "delete",
        "resourceId": "MedicationRequest/request-123",
        "description": action["description"],
    }


def test_hepatitis_c_gets_warning_with_the_5_mg_tablet_limited_to_21_days(client: TestClient) -> None:
    """Mild hepatic impairment, 10 mg a day for 30 days: the 5 mg swap also carries the duration limit."""
    body = client.post(
        SELECT, json=fixture("cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-10mg.json")
    ).json()
    assert rule_ids(body) == ["cyclobenzaprine-hepatic-impairment", "cyclobenzaprine-duration"]
    [card] = cards_for(body, "cyclobenzaprine-hepatic-impairment")
    assert_common(card, "cyclobenzaprine-hepatic-impairment", "warning")
    assert "10 mg per dose" in card["detail"] and "B18.2" in card["detail"]
    assert card["suggestions"][0]["label"].endswith("(limited to 21 days)")
    resource = only_action(card)["resource"]
    MedicationRequest.model_validate(resource)
    assert resource["medicationCodeableConcept"]["coding"] == [
        {"system": RXNORM, "code": "828320", "display": "Cyclobenzaprine hydrochloride 5 MG Oral Tablet"}
    ]
    assert resource["medicationCodeableConcept"]["text"]  # the sandbox needs text and coding[0].code
    dosage = resource["dosageInstruction"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1
    assert dosage["timing"]["repeat"]["frequency"] == 1  # same frequency, under the cap
    assert dosage["timing"]["repeat"]["boundsDuration"]["value"] == 21


def test_five_mg_suggestion_caps_frequency_at_three_a_day(client: TestClient) -> None:
    body = client.post(
        SELECT, json=fixture("cyclobenzaprine-hepatic-impairment/fires-warning-undotted-icd-qid.json")
    ).json()
    [card] = cards_for(body, "cyclobenzaprine-hepatic-impairment")
    assert "1 tablet three times a day" in card["suggestions"][0]["label"]
    repeat = only_action(card)["resource"]["dosageInstruction"][0]["timing"]["repeat"]
    assert (repeat["frequency"], repeat["period"], repeat["periodUnit"]) == (3, 1, "d")


def test_sciatica_for_six_weeks_gets_mri_card_that_does_not_push_the_mri(client: TestClient) -> None:
    body = client.post(SELECT, json=fixture("refractory-spasm-imaging/fires-sciatica-42-days-v2-six-weeks.json")).json()
    [card] = cards_for(body, "refractory-spasm-imaging")
    assert_common(card, "refractory-spasm-imaging", "warning")
    assert "**42 days**" in card["detail"]
    for differential in ("nerve impingement", "disc pathology", "fibromyalgia", "myofascial pain"):
        assert differential in card["detail"]
    action = only_action(card)
    assert "isRecommended" not in card["suggestions"][0]  # ACP: only for surgery or injection candidates
    assert action["type"] == "create"
    ServiceRequest.model_validate(action["resource"])
    assert action["resource"]["code"]["coding"][0] == {
        "system": "http://www.ama-assn.org/go/cpt",
        "code": "72148",
        "display": "MRI lumbar spine without contrast",
    }
    assert action["resource"]["subject"] == {"reference": "Patient/harness-pt-1"}


def test_a_prior_course_and_seven_weeks_of_back_pain_get_an_info_card_without_mri(client: TestClient) -> None:
    body = client.post(SELECT, json=fixture("refractory-spasm-imaging/fires-prior-course-3-weeks.json")).json()
    [card] = cards_for(body, "refractory-spasm-imaging")
    assert_common(card, "refractory-spasm-imaging", "info")
    assert "2026-10-31, 21 days ago" in card["detail"]
    assert "suggestions" not in card


def test_mri_suggestion_cites_the_sciatica(client: TestClient) -> None:
    body = client.post(SELECT, json=fixture("refractory-spasm-imaging/fires-sciatica.json")).json()
    [card] = cards_for(body, "refractory-spasm-imaging")
    resource = only_action(card)["resource"]
    assert resource["reasonReference"] == [{"reference": "Condition/back-2", "display": "Sciatica, right side"}]


def test_cumulative_days_are_stated_and_the_update_leaves_what_remains(client: TestClient) -> None:
    body = client.post(SELECT, json=fixture("cyclobenzaprine-duration/fires-cumulative-prior-course.json")).json()
    [card] = cards_for(body, "cyclobenzaprine-duration")
    assert "11 taken + 14 planned" in card["summary"]
    assert "**11 of the last 30 days**" in card["detail"] and "**14 more**" in card["detail"]
    resource = only_action(card)["resource"]
    assert resource["dispenseRequest"]["expectedSupplyDuration"]["value"] == 10  # 21 - 11 already taken


def test_a_prior_course_written_before_its_dosing_period_counts_the_period(client: TestClient) -> None:
    """A bounds period that sets the duration is the course, even when the order was written weeks
    before it: read from the written date to the period's end, its 6 days counted as 18."""
    request = fixture("cyclobenzaprine-duration/fires-cumulative-prior-course.json")
    prior = request["prefetch"]["medications"]["entry"][0]["resource"]
    prior.update(status="completed", authoredOn="2026-10-25")
    del prior["dispenseRequest"]
    prior["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": "2026-11-06", "end": "2026-11-11"}
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dispenseRequest"]["expectedSupplyDuration"]["value"] = 15
    assert not cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-duration")  # 6 + 15
    draft["dispenseRequest"]["expectedSupplyDuration"]["value"] = 16
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-duration")
    assert "6 taken + 16 planned" in card["summary"] and "2026-11-06" in card["detail"]


def test_one_day_left_is_said_as_one_day(client: TestClient) -> None:
    request = fixture("cyclobenzaprine-duration/fires-cumulative-prior-course.json")
    prior = request["prefetch"]["medications"]["entry"][0]["resource"]
    prior.update(status="completed", authoredOn="2026-11-01")
    prior["dispenseRequest"]["expectedSupplyDuration"]["value"] = 20
    request["context"]["draftOrders"]["entry"][0]["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] = 2
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-duration")
    assert "20 taken + 2 planned" in card["summary"]
    assert card["suggestions"][0]["label"] == "Limit to the 1 day left of 21 (keeps 10 mg)"


def test_unknown_duration_gets_info_card(client: TestClient) -> None:
    body = client.post(SELECT, json=fixture("cyclobenzaprine-duration/fires-unknown-duration.json")).json()
    [card] = cards_for(body, "cyclobenzaprine-duration")
    assert_common(card, "cyclobenzaprine-duration", "info")
    # An info card needs no justification to pass over; it only offers to go quiet.
    assert [r["code"] for r in card["overrideReasons"]] == ["dont-show-again"]
    assert only_action(card)["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] == 21


def test_order_sign_reviews_every_draft(make_client: Callable[..., TestClient]) -> None:
    """An app of its own: order-sign does not repeat what order-select (this module's other
    tests) showed for this draft today."""
    client = make_client()
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    body = client.post(SIGN, json=request).json()
    assert rule_ids(body) == ["cyclobenzaprine-duration"]


def test_order_select_reviews_only_selected_drafts(client: TestClient) -> None:
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    request["context"]["selections"] = ["MedicationRequest/some-other-draft"]
    assert client.post(SELECT, json=request).json() == {"cards": []}


def _two_drafts() -> dict[str, Any]:
    """Signing cyclobenzaprine (hepatic failure on file) and baclofen, after a course 3 weeks ago,
    with low back pain for 50 days."""
    request = fixture("cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")
    back_pain = fixture("refractory-spasm-imaging/fires-prior-course-3-weeks.json")["prefetch"]["conditions"]
    request["prefetch"]["conditions"]["entry"] += back_pain["entry"]
    request["hook"] = "order-sign"
    request["prefetch"]["medications"] = fixture("refractory-spasm-imaging/fires-prior-course-3-weeks.json")[
        "prefetch"
    ]["medications"]
    baclofen = fixture("refractory-spasm-imaging/fires-baclofen-prior-tizanidine.json")["context"]["draftOrders"][
        "entry"
    ][0]
    baclofen["resource"]["id"] = "request-456"
    request["context"]["draftOrders"]["entry"].append(baclofen)
    return request


def test_critical_cards_come_first_and_patient_level_cards_survive_a_deleted_order(client: TestClient) -> None:
    body = client.post(SIGN, json=_two_drafts()).json()
    assert [c["indicator"] for c in body["cards"]] == ["critical", "warning", "info"]
    # Baclofen's own cards stay: a second relaxant alongside cyclobenzaprine, and the MRI card.
    assert rule_ids(body) == [
        "cyclobenzaprine-hepatic-impairment",
        "muscle-relaxant-duplicate",
        "refractory-spasm-imaging",
    ]
    assert body["cards"][1]["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/request-456"
    # The critical card names what it silenced for its order, not the MRI card, which still shows.
    flagged = body["cards"][0]["detail"].split("\n\nAlso flagged: ")[1]
    assert names(flagged, "cyclobenzaprine-duration") and not names(flagged, "refractory-spasm-imaging")


def test_mri_card_on_the_only_relevant_order_goes_with_its_deletion(client: TestClient) -> None:
    request = _two_drafts()
    del request["context"]["draftOrders"]["entry"][1]
    assert rule_ids(client.post(SIGN, json=request).json()) == ["cyclobenzaprine-hepatic-impairment"]


# -- evidence cited once -----------------------------------------------------------------------

CARDS = Path(__file__).resolve().parent.parent / "cards"


def _evidence() -> dict[str, dict[str, str]]:
    return tomllib.loads((CARDS / "evidence.toml").read_text())


@pytest.mark.parametrize("name", [p.relative_to(FIXTURES).as_posix() for p in hook_requests()])
def test_evidence_is_cited_once_and_no_internal_wording_shows(client: TestClient, name: str) -> None:
    """Evidence with a URL is a link button and nowhere else; evidence without one is cited by
    its citation in the detail's closing "Evidence:" line; only the card file's evidence (a
    notice, the service's own word on the call, has none)."""
    request = fixture(name)
    response = client.post(hook_url(request), json=request)
    evidence = _evidence()
    for card in response.json().get("cards", []) if response.status_code == 200 else []:
        topic = card["source"]["topic"]
        notice = topic["system"] == "urn:back-spasm-cds:notice"
        own = [] if notice else tomllib.loads((CARDS / f"{topic['code']}.toml").read_text())["evidence"]
        links = {link["label"] for link in card.get("links", [])}
        assert links <= {evidence[key]["label"] for key in own if "url" in evidence[key]}
        detail = card["detail"]
        assert not any(evidence[key].get("url", "\0") in detail for key in evidence)
        assert not any(evidence[key]["label"] in detail for key in evidence if "url" in evidence[key])
        cited = detail.split("\n\nEvidence: ")[1] if "\n\nEvidence: " in detail else ""
        unlinked = [evidence[key]["citation"] for key in own if "url" not in evidence[key]]
        assert all(citation in unlinked for citation in _citations(cited, unlinked))
        for internal in ("clinical-rules.md", "second source document", "§"):
            assert internal not in detail and internal not in card["summary"]


def _citations(line: str, known: list[str]) -> list[str]:
    """The citations a closing "Evidence:" line is made of (each one of ``known``), all of it."""
    found = [citation for citation in known if citation in line]
    assert len(" ".join(found)) == len(line), line
    return found


def _cards_dir(tmp_path: Path, variant: str, line: str) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(CARDS, target)
    path = target / "cyclobenzaprine-duration.toml"
    text = path.read_text()
    header = f"[variants.{variant}]\n"
    assert header in text
    path.write_text(text.replace(header, header + line + "\n", 1))
    return target


def test_a_variant_cites_the_subset_of_evidence_it_names(tmp_path: Path) -> None:
    cards_dir = _cards_dir(tmp_path, "planned-too-long", 'evidence = ["FDA-IR"]')
    app = create_app(Settings(cards_dir=cards_dir, data_dir=tmp_path / "var", auth_mode="off"), clock=Clock(NOON))
    with TestClient(app) as own:
        body = own.post(SELECT, json=fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")).json()
    [card] = cards_for(body, "cyclobenzaprine-duration")
    assert [link["label"] for link in card["links"]] == [_evidence()["FDA-IR"]["label"]]
    assert "\n\nEvidence: " not in card["detail"]  # FAIL, which has no URL, is not cited by this variant


def test_a_variant_citing_evidence_outside_its_file_stops_start_up(tmp_path: Path) -> None:
    cards_dir = _cards_dir(tmp_path, "planned-too-long", 'evidence = ["FDA-IR", "EULAR-FM"]')
    with pytest.raises(CardContentError, match=re.escape("variants.planned-too-long.evidence names keys not in")):
        create_app(Settings(cards_dir=cards_dir, data_dir=tmp_path / "var", auth_mode="off"))


@pytest.mark.parametrize(
    ("name", "rule_id", "labels"),
    [
        (
            "cyclobenzaprine-older-adult/fires-age-70-extended-release.json",
            "cyclobenzaprine-duration",
            ["FDA label: cyclobenzaprine ER capsules (Amrix)"],
        ),
        (
            "muscle-relaxant-cns-depressant/fires-age-70-opioid-and-gabapentinoid-beers.json",
            "muscle-relaxant-cns-depressant",
            [
                "FDA label: cyclobenzaprine tablets",
                "FDA boxed warning: opioids with benzodiazepines (2016)",
                "FDA safety communication: gabapentinoids and breathing (2019)",
                "AGS Beers Criteria (2023)",
            ],
        ),
    ],
    ids=["duration-of-an-er-capsule-cites-its-own-label", "cns-depressants-at-70-warn-citing-beers"],
)
def test_a_card_warns_and_cites_the_evidence_of_its_product_and_age(
    client: TestClient, name: str, rule_id: str, labels: list[str]
) -> None:
    """Literal expectations (clinical specification §3), not the golden files alone: accepting a
    regenerated golden would have made an info card, or the IR label on an ER capsule, the rule."""
    [card] = cards_for(client.post(SELECT, json=fixture(name)).json(), rule_id)
    assert card["indicator"] == "warning"
    assert [link["label"] for link in card["links"]] == labels


@pytest.mark.parametrize(
    ("authored", "fires"), [("2025-11-21", False), ("2025-11-20", True)], ids=["365-days", "366-days"]
)
def test_a_lumbar_mri_counts_for_365_days_and_no_more(client: TestClient, authored: str, fires: bool) -> None:
    """ "No lumbar MRI/CT in the last 365 days" (§3): one ordered 365 days before today (TODAY,
    2026-11-21) still counts, one of 366 days does not."""
    request = fixture("refractory-spasm-imaging/fires-mri-400-days-ago-v2-365-day-lookback.json")
    [mri] = [e["resource"] for e in request["prefetch"]["imaging"]["entry"] if e["resource"]["id"] == "mri-1"]
    mri["authoredOn"] = authored
    assert ("refractory-spasm-imaging" in rule_ids(client.post(SELECT, json=request).json())) is fires


@pytest.mark.parametrize(("end", "summary"), [("2026-10-23", None), ("2026-10-24", "2 taken + 20 planned")])
def test_days_taken_count_within_the_last_30_days_and_no_earlier(
    client: TestClient, end: str, summary: str | None
) -> None:
    """The 30 days ending today (TODAY, 2026-11-21) start on 23 October: a course ending that day
    adds one day taken to 20 planned (21: within the limit), one ending on the 24th two (22)."""
    request = fixture("cyclobenzaprine-duration/fires-cumulative-prior-course.json")
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dispenseRequest"]["expectedSupplyDuration"]["value"] = 20
    [prior] = [e["resource"] for e in request["prefetch"]["medications"]["entry"] if e["resource"]["id"] == "prior-1"]
    prior["status"] = "completed"
    prior["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": "2026-10-01", "end": end}
    cards = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-duration")
    assert [card["summary"].split(": ")[-1] for card in cards] == ([summary] if summary else [])
