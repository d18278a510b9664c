"""A draft whose ``medicationCodeableConcept`` names nothing the service can read is said not
checked, as one whose reference leads nowhere is: a coding without its system, an empty concept,
a string. Each was silence (no card, no notice), as if the draft had been checked and found
clear: an integrator testing an EHR that leaves out the system saw nothing amiss. A coding's
display names the drug with or without its system, in a draft and in the history alike."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, fixture, rule_ids

DRAFT = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
DUPLICATE = "muscle-relaxant-duplicate/fires-tizanidine-active.json"
CYCLOBENZAPRINE = "Cyclobenzaprine hydrochloride 10 MG Oral Tablet"


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def with_draft_concept(concept: object) -> dict[str, Any]:
    request = fixture(DRAFT)
    request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = concept
    return request


@pytest.mark.parametrize(
    "concept",
    [{"coding": [{"code": "828348"}]}, {}, {"text": " "}, [{"coding": [{"code": "828348"}]}], CYCLOBENZAPRINE, 828348],
)
def test_a_draft_concept_that_names_nothing_readable_is_said_not_checked(module: TestClient, concept: object) -> None:
    cards = answered(module, with_draft_concept(concept))["cards"]
    assert [card["source"]["topic"]["code"] for card in cards] == ["draft-not-checked"]
    assert "(a code with its code system, or a drug name, where the drug belongs)" in cards[0]["detail"]
    assert "order (the medication record" not in cards[0]["detail"]  # the draft points to none


def test_a_coding_display_without_its_system_names_the_drug(module: TestClient) -> None:
    request = with_draft_concept({"coding": [{"code": "828348", "display": CYCLOBENZAPRINE}]})
    assert rule_ids(answered(module, request)) == ["cyclobenzaprine-duration"]


def test_a_drug_no_rule_reads_is_named_and_no_notice(module: TestClient) -> None:
    """A local code with its system names a drug, one no rule reads: no card, and rightly no notice."""
    assert (
        rule_ids(
            answered(module, with_draft_concept({"coding": [{"system": "http://example.org/formulary", "code": "1"}]}))
        )
        == []
    )


def test_a_draft_with_no_drug_chosen_yet_is_no_notice(module: TestClient) -> None:
    """The sandbox's Rx View before a drug is picked: neither field."""
    request = fixture(DRAFT)
    del request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"]
    assert rule_ids(answered(module, request)) == []


@pytest.mark.parametrize(
    ("concept", "expected"),
    [
        ({"coding": [{"code": "313412", "display": "tizanidine 2 MG Oral Tablet"}]}, ["muscle-relaxant-duplicate"]),
        ({"coding": [{"code": "313412"}]}, ["partial-history"]),
    ],
)
def test_a_history_order_coded_without_its_system(module: TestClient, concept: object, expected: list[str]) -> None:
    """Read by its display; with none, the history is read in part, and said."""
    request = fixture(DUPLICATE)
    request["prefetch"]["medications"]["entry"][0]["resource"]["medicationCodeableConcept"] = concept
    assert rule_ids(answered(module, request)) == expected


def three_drafts(*concepts: object) -> dict[str, Any]:
    """The sandbox's draft three times over, under its own ids, each with a concept of its own
    (None: the sandbox's coded one), each under review."""
    request = fixture(DRAFT)
    entries = request["context"]["draftOrders"]["entry"]
    first = entries.pop()["resource"]
    for n, concept in enumerate(concepts, 1):
        draft = {**copy.deepcopy(first), "id": f"pt-4471-draft-{n}"}
        if concept is not None:
            draft["medicationCodeableConcept"] = concept
        entries.append({"resource": draft})
    request["context"]["selections"] = [f"MedicationRequest/pt-4471-draft-{n}" for n in range(1, len(concepts) + 1)]
    return request


def test_the_drafts_not_checked_are_named_by_their_place_and_what_was_sent(module: TestClient) -> None:
    """A reviewer's find: with several drafts, "a draft order's drug could not be identified"
    left the clinician to guess which. Named by the place in the list and what the EHR sent,
    never by the id (which may be built from the patient's)."""
    request = three_drafts({"coding": [{"code": "828348"}]}, None, "Flexeril 10mg")
    request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["text"] = "1 tab TID prn spasm"
    cards = answered(module, request)["cards"]
    assert [card["source"]["topic"]["code"] for card in cards] == ["cyclobenzaprine-duration", "draft-not-checked"]
    notice = cards[-1]
    assert notice["summary"] == "2 draft orders were not checked: their drugs could not be identified"
    assert notice["detail"].startswith(
        "Not checked (drafts counted in the order the EHR sent them): **draft order 1 of 3** (code 828348 with no "
        "code system, “1 tab TID prn spasm”); **draft order 3 of 3** (free text “Flexeril 10mg” in place of a coded "
        "drug). The drugs could not be identified from what the EHR sent"
    )
    assert notice["detail"].endswith("no check ran on those orders. Review them before signing.")
    assert "pt-4471" not in json.dumps(notice)


def test_a_draft_with_no_id_is_named_by_its_place(module: TestClient) -> None:
    request = three_drafts(None, None, {"coding": [{"code": "828348"}]})
    del request["context"]["draftOrders"]["entry"][2]["resource"]["id"]
    request["hook"] = "order-sign"  # every draft under review, one with no id too (order-select cannot name it)
    del request["context"]["selections"]
    notice = answered(module, request)["cards"][-1]
    assert "**draft order 3 of 3** (code 828348 with no code system)" in notice["detail"]


def test_the_only_draft_is_the_draft_order(module: TestClient) -> None:
    request = with_draft_concept({"coding": [{"code": "828348"}, {"code": "828348"}]})
    [notice] = answered(module, request)["cards"]
    assert notice["summary"] == "A draft order was not checked: its drug could not be identified"
    assert notice["detail"].startswith("Not checked: the draft order (code 828348 with no code system). The drug ")


def test_a_draft_whose_id_is_no_string_is_counted_in_its_place(module: TestClient) -> None:
    """A code review's find: a draft with the id 5 (a number) is reviewed under a stand-in, and the
    notice, numbering by the id as sent, named the other draft (which had its own card)."""
    request = three_drafts(None, {"coding": [{"code": "828348"}]})
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    request["context"]["draftOrders"]["entry"][0]["resource"]["id"] = 5
    request["context"]["draftOrders"]["entry"][1]["resource"]["id"] = "5"
    notice = answered(module, request)["cards"][-1]
    assert "**draft order 2 of 2** (code 828348 with no code system)" in notice["detail"]


@pytest.mark.parametrize(
    ("concept", "dosage", "said"),
    [
        ({"coding": [{"code": " "}]}, " ", "the draft order. "),
        (True, None, "the draft order. "),
        ({"coding": [{"code": True}, {"system": 5, "code": "828348"}]}, None, "(code 828348 with no code system)"),
        (
            "Flexeril 10mg",
            "[take](http://x.example/) **2** <b>now</b>",
            "free text “Flexeril 10mg” in place of a "
            "coded drug, “\\[take\\](`http://x.example/)` \\*\\*2\\*\\* \\<b\\>now\\</b\\>”)",
        ),
        ({}, "1 tablet " * 10, "(“" + ("1 tablet " * 10)[:59] + "…”)"),
        (
            {},
            "see https://evil.example/log_in or help@evil.example",
            "(“see `https://evil.example/log_in` or `help@evil.example`”)",
        ),
    ],
    ids=[
        "blanks",
        "a-boolean",
        "a-boolean-code-and-a-system-no-string",
        "markdown-made-plain",
        "cut",
        "bare-addresses",
    ],
)
def test_what_a_draft_was_sent_with_is_said_only_as_words_made_plain(
    module: TestClient, concept: object, dosage: str | None, said: str
) -> None:
    """Blanks and booleans are no words ("code  without its system", "sent as “True”"); the EHR's
    Markdown would have shown a link as the service's own."""
    request = with_draft_concept(concept)
    if dosage is not None:
        request["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["text"] = dosage
    [notice] = answered(module, request)["cards"]
    assert notice["source"]["topic"]["code"] == "draft-not-checked"
    assert said in notice["detail"]


def test_many_drafts_not_checked_beside_a_record_not_read_keep_the_summary_short(module: TestClient) -> None:
    """CDS Hooks asks for a summary under 140 characters: "12 draft orders were not checked
    (their drugs could not be identified) and the patient's birth date …" was 140."""
    request = three_drafts(None, *[{"coding": [{"code": "828348"}]}] * 120)  # the first read: the rules run
    request["prefetch"]["patient"]["birthDate"] = "1950-13-45"
    notice = answered(module, request)["cards"][-1]
    assert notice["summary"] == (
        "120 draft orders were not checked (drugs not identified) and the patient's birth date could not be "
        "read: checks are incomplete"
    )
    assert len(notice["summary"]) < 140
    assert "**draft order 4 of 121** (code 828348 with no code system) and 117 more." in notice["detail"]
