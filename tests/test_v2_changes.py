"""Every change of the clinical specification's version 2 (its first section), pinned by a
fixture pair whose names say which change they pin: the request on which the changed behaviour
shows, and the one on which it must not. ``tests/test_rules.py`` also runs each through the CLI;
these check the behaviour the change is about (indicator, wording, suggestions)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def answer(client: TestClient, name: str) -> dict[str, Any]:
    return answered(client, fixture(name))


# change → (rule, fixture where the v2 behaviour shows with its indicator, fixture where it must not)
PAIRS = {
    "1-inclusive-period-end": (
        "cyclobenzaprine-maoi",
        ("cyclobenzaprine-maoi/fires-maoi-last-day-13-days-ago-v2-inclusive-end.json", "critical"),
        "cyclobenzaprine-maoi/silent-maoi-last-day-14-days-ago-v2-inclusive-end.json",
    ),
    "1-inclusive-period-end-duration": (
        "cyclobenzaprine-duration",
        ("cyclobenzaprine-duration/fires-v2-inclusive-end-bounds-period-22-days.json", "warning"),
        "cyclobenzaprine-duration/silent-v2-inclusive-end-bounds-period-21-days.json",
    ),
    "2-no-mri-in-the-first-6-weeks": (
        "refractory-spasm-imaging",
        ("refractory-spasm-imaging/fires-sciatica-42-days-v2-six-weeks.json", "warning"),
        "refractory-spasm-imaging/silent-sciatica-day-2-v2-no-mri-in-first-6-weeks.json",
    ),
    "3-tachycardias-critical": (
        "cyclobenzaprine-contraindicated-condition",
        (
            "cyclobenzaprine-contraindicated-condition/fires-ventricular-tachycardia-i47-2-v2-tachycardias.json",
            "critical",
        ),
        "cyclobenzaprine-contraindicated-condition/silent-old-mi-i25-2-recorded-10-days-ago-v2-old-mi-never-recent.json",
    ),
    "3-first-degree-av-block-caution": (
        "cyclobenzaprine-contraindicated-condition",
        (
            "cyclobenzaprine-contraindicated-condition/"
            "fires-warning-first-degree-av-block-i44-0-v2-caution-not-critical.json",
            "warning",
        ),
        "cyclobenzaprine-contraindicated-condition/silent-history-of-mi-display-v2-old-mi-never-recent.json",
    ),
    "4-steatosis-not-impairment-encephalopathy-severe": (
        "cyclobenzaprine-hepatic-impairment",
        ("cyclobenzaprine-hepatic-impairment/fires-v2-hepatic-encephalopathy-critical.json", "critical"),
        "cyclobenzaprine-hepatic-impairment/silent-v2-steatosis-fatty-liver-severity-severe.json",
    ),
    "4-cirrhosis-severity-not-recorded": (
        "cyclobenzaprine-hepatic-impairment",
        ("cyclobenzaprine-hepatic-impairment/fires-v2-cirrhosis-unrecorded-severity-5mg-info.json", "info"),
        "cyclobenzaprine-hepatic-impairment/silent-v2-steatosis-nash-10mg.json",
    ),
    "5-older-adult-any-dose": (
        "cyclobenzaprine-older-adult",
        ("cyclobenzaprine-older-adult/fires-v2-any-dose-age-65-5mg-exactly-info.json", "info"),
        "cyclobenzaprine-older-adult/silent-v2-any-dose-age-64-5mg.json",
    ),
    "5-other-beers-relaxants": (
        "muscle-relaxant-older-adult",
        ("muscle-relaxant-older-adult/fires-v2-carisoprodol-age-80.json", "warning"),
        "muscle-relaxant-older-adult/silent-v2-carisoprodol-age-64.json",
    ),
    "6-maoi-24-hour-washout": (
        "cyclobenzaprine-maoi",
        ("cyclobenzaprine-maoi/fires-linezolid-last-day-today-v2-24-hour-washout.json", "critical"),
        "cyclobenzaprine-maoi/silent-linezolid-last-day-yesterday-v2-24-hour-washout.json",
    ),
    "6-maoi-stop-date-unknown": (
        "cyclobenzaprine-maoi",
        ("cyclobenzaprine-maoi/fires-maoi-stop-date-unknown-v2-warning.json", "warning"),
        "cyclobenzaprine-maoi/silent-linezolid-unknown-duration-assumed-course-ended-v2-24-hour-washout.json",
    ),
    "7-serotonergic-label-list": (
        "cyclobenzaprine-serotonergic",
        ("cyclobenzaprine-serotonergic/fires-vilazodone-in-draft-orders-v2.json", "warning"),
        "cyclobenzaprine-serotonergic/silent-mirtazapine-v2-not-on-label.json",
    ),
    "8-duration-taken-plus-planned-sublingual-exempt": (
        "cyclobenzaprine-duration",
        ("cyclobenzaprine-duration/fires-v2-taken-plus-planned-nothing-left-deletes.json", "warning"),
        "cyclobenzaprine-duration/silent-v2-sublingual-exempt-tonmya-90-days.json",
    ),
    "9-duplicate-same-drug": (
        "muscle-relaxant-duplicate",
        ("muscle-relaxant-duplicate/fires-same-drug-active-v2-renewal-or-duplicate.json", "warning"),
        "muscle-relaxant-duplicate/silent-same-drug-finished-yesterday-v2-renewal-or-duplicate.json",
    ),
    "10-chronic-after-12-weeks": (
        "muscle-relaxant-chronic-pain",
        ("muscle-relaxant-chronic-pain/fires-myalgia-84-days-v2-12-weeks.json", "warning"),
        "muscle-relaxant-chronic-pain/silent-myalgia-83-days-v2-12-weeks.json",
    ),
    "10-fibromyalgia-cyclobenzaprine": (
        "muscle-relaxant-chronic-pain",
        ("muscle-relaxant-chronic-pain/fires-fibromyalgia-baclofen-v2.json", "warning"),
        "muscle-relaxant-chronic-pain/silent-fibromyalgia-cyclobenzaprine-v2-eular.json",
    ),
    "12-low-value-needs-indication-silent-after-fracture": (
        "low-value-back-therapy",
        ("low-value-back-therapy/fires-lumbar-orthosis-old-fracture-s32-010d-v2.json", "info"),
        "low-value-back-therapy/silent-lumbar-orthosis-current-fracture-s32-010a-v2.json",
    ),
    "12-low-value-needs-a-back-pain-indication": (
        "low-value-back-therapy",
        ("low-value-back-therapy/fires-lumbar-orthosis-old-fracture-s32-010d-v2.json", "info"),
        "low-value-back-therapy/silent-tens-no-back-pain-indication-v2.json",
    ),
    "13-new-back-pain-red-flag": (
        "back-pain-red-flag",
        ("back-pain-red-flag/fires-cauda-equina-onset-29-days-critical-mri.json", "critical"),
        "back-pain-red-flag/silent-cauda-equina-resolved.json",
    ),
    "13-new-cns-depressant": (
        "muscle-relaxant-cns-depressant",
        ("muscle-relaxant-cns-depressant/fires-oxycodone-active.json", "warning"),
        "muscle-relaxant-cns-depressant/silent-oxycodone-finished.json",
    ),
    "13-new-anticholinergic-caution": (
        "cyclobenzaprine-anticholinergic-caution",
        ("cyclobenzaprine-anticholinergic-caution/fires-bph-with-urinary-symptoms-n40-1.json", "warning"),
        "cyclobenzaprine-anticholinergic-caution/silent-bph-without-urinary-symptoms-n40-0.json",
    ),
    "13-new-tizanidine-cyp1a2": (
        "tizanidine-cyp1a2-inhibitor",
        ("tizanidine-cyp1a2-inhibitor/fires-ciprofloxacin-ordered-tizanidine-active.json", "critical"),
        "tizanidine-cyp1a2-inhibitor/silent-ciprofloxacin-eye-drops.json",
    ),
    "14-red-flag-subsumes-the-heat-card": (
        "nonpharmacologic-first-line",
        ("nonpharmacologic-first-line/fires-back-pain-on-problem-list.json", "info"),
        "nonpharmacologic-first-line/silent-red-flag-card-subsumes-v2-bone-metastasis.json",
    ),
    "14-chronic-pain-subsumes-the-heat-card": (
        "nonpharmacologic-first-line",
        ("nonpharmacologic-first-line/fires-back-pain-on-problem-list.json", "info"),
        "nonpharmacologic-first-line/silent-chronic-pain-card-subsumes-v2-back-pain-100-days.json",
    ),
    "14-red-flag-subsumes-the-mri-card": (
        "refractory-spasm-imaging",
        ("refractory-spasm-imaging/fires-sciatica-42-days-v2-six-weeks.json", "warning"),
        "refractory-spasm-imaging/silent-red-flag-card-subsumes-v2-cauda-equina.json",
    ),
}


@pytest.mark.parametrize(("rule", "fires", "silent"), PAIRS.values(), ids=PAIRS.keys())
def test_each_v2_change_shows_on_one_fixture_and_not_on_its_pair(
    client: TestClient, rule: str, fires: tuple[str, str], silent: str
) -> None:
    name, indicator = fires
    [card] = cards_for(answer(client, name), rule)
    assert card["indicator"] == indicator
    assert cards_for(answer(client, silent), rule) == []


def test_2_the_mri_is_offered_not_recommended_and_the_red_flags_are_listed(client: TestClient) -> None:
    [card] = cards_for(
        answer(client, "refractory-spasm-imaging/fires-sciatica-42-days-v2-six-weeks.json"), "refractory-spasm-imaging"
    )
    [suggestion] = card["suggestions"]
    assert "isRecommended" not in suggestion
    assert [a["resource"]["code"]["coding"][0]["code"] for a in suggestion["actions"]] == ["72148"]
    assert "red flags" in card["detail"].lower() and "saddle" in card["detail"].lower()


def test_5_the_older_adult_card_offers_the_low_dose_or_removal(client: TestClient) -> None:
    [card] = cards_for(
        answer(client, "cyclobenzaprine-older-adult/fires-age-65-10mg.json"), "cyclobenzaprine-older-adult"
    )
    assert [[a["type"] for a in s["actions"]] for s in card["suggestions"]] == [["update"], ["delete"]]
    assert card["selectionBehavior"] == "at-most-one"
    [info] = cards_for(
        answer(client, "cyclobenzaprine-older-adult/fires-v2-any-dose-age-70-5mg-info.json"),
        "cyclobenzaprine-older-adult",
    )
    [removal] = info["suggestions"]
    assert "isRecommended" not in removal and removal["actions"][0]["type"] == "delete"


def test_7_tramadol_adds_the_seizure_warning(client: TestClient) -> None:
    name = "cyclobenzaprine-serotonergic/fires-tramadol-in-draft-orders-v2-seizure-warning.json"
    [card] = cards_for(answer(client, name), "cyclobenzaprine-serotonergic")
    assert "seizure" in card["detail"].lower()


def test_8_the_duration_summary_says_taken_plus_planned_and_the_swap_carries_the_limit(client: TestClient) -> None:
    body = answer(client, "cyclobenzaprine-older-adult/fires-composed-swap-10mg-tid-30-days-age-70.json")
    [duration] = cards_for(body, "cyclobenzaprine-duration")
    assert duration["summary"].endswith("30 days planned")
    assert "(keeps 10 mg)" in duration["suggestions"][0]["label"]
    [older] = cards_for(body, "cyclobenzaprine-older-adult")
    swap = older["suggestions"][0]
    assert swap["label"].endswith("(limited to 21 days)")
    resource = swap["actions"][0]["resource"]
    assert resource["dispenseRequest"]["expectedSupplyDuration"]["value"] == 21
    taken = answer(client, "cyclobenzaprine-duration/fires-cumulative-prior-course.json")
    [card] = cards_for(taken, "cyclobenzaprine-duration")
    assert " taken + " in card["summary"] and card["summary"].endswith(" planned")


def test_11_no_relaxant_is_named_to_an_older_adult(client: TestClient) -> None:
    [older] = cards_for(
        answer(client, "muscle-relaxant-class-switch/fires-age-70-names-no-relaxant-v2.json"),
        "muscle-relaxant-class-switch",
    )
    [younger] = cards_for(
        answer(client, "muscle-relaxant-class-switch/fires-cyclobenzaprine-again.json"), "muscle-relaxant-class-switch"
    )
    assert "tizanidine" in younger["detail"].lower()
    text = (older["summary"] + older["detail"]).lower()
    for relaxant in ("tizanidine", "baclofen", "methocarbamol", "carisoprodol", "metaxalone", "chlorzoxazone"):
        assert relaxant not in text


def test_14_a_critical_delete_names_the_checks_it_silenced(client: TestClient) -> None:
    body = answer(client, "multiple-rules/av-block-sertraline-70.json")
    critical = [c for c in body["cards"] if c["indicator"] == "critical"]
    assert critical and "Also flagged:" in critical[0]["detail"]
    assert [c["indicator"] for c in body["cards"]] == sorted(
        (c["indicator"] for c in body["cards"]), key=["critical", "warning", "info"].index
    )
