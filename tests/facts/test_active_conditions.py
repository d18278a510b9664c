"""Active conditions, read off the contraindication card: clinical and verification status, past
disease, the recorded date standing in for the onset."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import cards_for
from tests.facts.conftest import (
    HYPERTHYROIDISM,
    ICD10CM,
    MI,
    condition,
    hook,
    post,
)


def contraindication(client: TestClient, *conditions: dict[str, Any]) -> list[dict[str, Any]]:
    return cards_for(post(client, hook(conditions=conditions)), "cyclobenzaprine-contraindicated-condition")


@pytest.mark.parametrize(
    ("clinical", "verification", "abated", "active"),
    [
        ("active", None, None, True),
        ("recurrence", None, None, True),
        ("relapse", "unconfirmed", None, True),
        ("resolved", None, None, False),
        ("inactive", "confirmed", None, False),
        ("active", "refuted", None, False),
        ("active", "entered-in-error", None, False),
        (None, None, None, True),
        (None, "confirmed", None, True),
        (None, "provisional", None, True),
        (None, "unconfirmed", None, False),
        (None, "differential", None, False),
        (None, "confirmed", "2026-10-01", False),
        (None, None, "2026-12-31", True),
        (None, None, "2026-11-21", False),  # abated today: it is over
        (None, None, "2026-11-22", True),
        ("Active", None, None, True),  # FHIR codes are lower case; a client's capital is no reason to hide a card
        ("active", "Refuted", None, False),
    ],
)
def test_active_condition(
    client: TestClient, clinical: str | None, verification: str | None, abated: str | None, active: bool
) -> None:
    """Hyperthyroidism is a contraindication only while active (clinical specification §1)."""
    hyperthyroidism = condition(
        "thyroid", HYPERTHYROIDISM, onset="2025-01-01", clinical=clinical, verification=verification, abated=abated
    )
    assert len(contraindication(client, hyperthyroidism)) == (1 if active else 0)


@pytest.mark.parametrize(
    "abatement",
    [
        {"abatementAge": {"value": 45, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}},
        {"abatementRange": {"low": {"value": 40, "code": "a"}, "high": {"value": 45, "code": "a"}}},
        {"abatementString": "resolved after radioiodine"},
    ],
    ids=["age", "range", "words"],
)
def test_an_abatement_without_a_date_is_past(client: TestClient, abatement: dict[str, Any]) -> None:
    """With no clinical status, an abatement given as an age, a range or in words still says the
    condition ended (§1: absent counts as active only with no past abatement): it was recorded
    because it happened."""
    hyperthyroidism = condition("thyroid", HYPERTHYROIDISM, onset="2025-01-01", clinical=None)
    assert len(contraindication(client, hyperthyroidism)) == 1
    assert contraindication(client, {**hyperthyroidism, **abatement}) == []


@pytest.mark.parametrize("kind", ["Observation", "AllergyIntolerance", "FamilyMemberHistory"])
def test_only_conditions_are_conditions(client: TestClient, kind: str) -> None:
    """Another resource with the code in the conditions key is no condition (its code is read
    first, its type after: the type must still count)."""
    assert contraindication(client, condition("thyroid", HYPERTHYROIDISM, onset="2025-01-01"))
    other = {**condition("thyroid", HYPERTHYROIDISM, onset="2025-01-01"), "resourceType": kind}
    assert contraindication(client, other) == []


@pytest.mark.parametrize(
    ("codes", "text", "active"),
    [
        ((HYPERTHYROIDISM,), "History of hyperthyroidism", False),
        ((HYPERTHYROIDISM,), "history of thyrotoxicosis", False),
        ((HYPERTHYROIDISM, (ICD10CM, "Z86.39", "Personal history of other endocrine disease")), None, False),
        ((HYPERTHYROIDISM, (ICD10CM, "Z8739", "Personal history of other diseases")), "Thyrotoxicosis", False),
        ((MI,), "Old myocardial infarction", False),
        ((MI,), "Healed myocardial infarction", False),
        ((MI,), "Past MI, no symptoms", False),
        ((MI,), "Recent myocardial infarction", True),
        ((HYPERTHYROIDISM,), "Thyrotoxicosis (threshold labs)", True),
    ],
    ids=[
        "history-of",
        "history-of-lower-case",
        "z86-personal-history",
        "z87-undotted",
        "old-mi",
        "healed-mi",
        "past-mi",
        "recent-mi-stays",
        "old-inside-a-word-stays",
    ],
)
def test_past_disease_is_never_active(
    client: TestClient, codes: tuple[tuple[str, str, str], ...], text: str | None, active: bool
) -> None:
    """ "History of", "old", "past", "healed" (as words) and Z86/Z87 name the past; "Recent" does not."""
    found = condition("past", *codes, text=text, onset="2026-11-11")
    assert len(contraindication(client, found)) == (1 if active else 0)


@pytest.mark.parametrize("code", ["Z86.39", "Z87.39", "Z8739"])
def test_a_personal_history_code_without_a_display_names_the_past(client: TestClient, code: str) -> None:
    """Codings often come without a display: the Z86/Z87 code alone makes the thyrotoxicosis it
    is sent with a disease of the past (§1), with no "Personal history of" to read."""
    found = condition("past", HYPERTHYROIDISM, (ICD10CM, code, ""), text="Thyrotoxicosis", onset="2025-01-01")
    del found["code"]["coding"][1]["display"]
    assert contraindication(client, found) == []


@pytest.mark.parametrize(
    ("end", "active"),
    [(None, True), ("2026-08-25", True), ("2026-08-10", False)],
    ids=["open", "ends-inside-the-window", "ends-before-the-window"],
)
def test_an_onset_period_dates_an_acute_mi(client: TestClient, end: str | None, active: bool) -> None:
    """An MI whose onset period starts in "2026-08" may have begun as late as the 31st, inside the
    90 days from 2026-08-23: critical. A period that ends on the 10th began by then, before the
    window (§1: ``onsetPeriod.start`` is the onset, and a month alone covers its days)."""
    mi = condition("mi", (ICD10CM, "I21.4", "Non-ST elevation (NSTEMI) myocardial infarction"))
    mi["onsetPeriod"] = {"start": "2026-08", **({"end": end} if end else {})}
    assert [card["indicator"] for card in contraindication(client, mi)] == (["critical"] if active else [])


def test_recorded_date_stands_in_for_a_missing_onset(client: TestClient) -> None:
    """An acute MI with no onset, recorded 10 days ago: the record date is the onset (within 90 days)."""
    mi = condition("mi", (ICD10CM, "I21.9", "Acute myocardial infarction, unspecified"), recorded="2026-11-11")
    [card] = contraindication(client, mi)
    assert card["indicator"] == "critical"
