"""What names a history order's drug: a concept with words of its own names one, even a drug no
rule reads; one with neither words nor a code names nothing, and the history is then read in part."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import rule_ids
from tests.facts.conftest import course, hook, post


def by_reference(**reference: str) -> dict[str, Any]:
    """An active order naming its drug by a reference to a Medication the request does not hold."""
    order = course("elsewhere", status="active", authored="2026-11-01")
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/not-sent", **reference}
    return order


@pytest.mark.parametrize(
    ("reference", "said"),
    [({"display": "Lisinopril 10 MG Oral Tablet"}, False), ({}, True), ({"display": "  "}, True)],
    ids=["display-names-a-drug", "no-display", "blank-display"],
)
def test_a_display_naming_a_drug_no_rule_reads_leaves_the_history_whole(
    client: TestClient, reference: dict[str, str], said: bool
) -> None:
    """No Medication to read and no fhirServer to ask: a reference whose display names lisinopril
    names a drug (none a check reads), and nothing was hidden; without words it names nothing, an
    MAO inhibitor may hide behind it, and the answer says the history was read in part."""
    request = hook(history=(by_reference(**reference),))
    del request["fhirServer"]
    assert ("partial-history" in rule_ids(post(client, request))) is said
