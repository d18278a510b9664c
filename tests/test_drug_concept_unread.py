"""A draft whose ``medicationCodeableConcept`` names nothing the service can read is said not
checked, as one whose reference leads nowhere is: a coding without its system, an empty concept,
a string. Each was silence (no card, no notice), as if the draft had been checked and found
clear: an integrator testing an EHR that leaves out the system saw nothing amiss. A coding's
display names the drug with or without its system, in a draft and in the history alike."""

from __future__ import annotations

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
    assert "(no drug name or code the service can read)" in cards[0]["detail"]


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
