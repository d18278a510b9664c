"""What imaging on record silences ``refractory-spasm-imaging``: a lumbar MRI or CT of the last
365 days, or one whose date the record does not give (it may be recent: ordering another would
repeat it); another procedure of the last month, not lumbar imaging, does not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, TODAY, cards_for, fixture

RULE = "refractory-spasm-imaging"
CPT = "http://www.ama-assn.org/go/cpt"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def with_imaging(change: dict[str, Any], *, dated: bool = True) -> dict[str, Any]:
    """The fixture's lumbar MRI of a month ago (which silences the card), changed."""
    request = fixture(f"{RULE}/silent-recent-mri.json")
    study = request["prefetch"]["imaging"]["entry"][0]["resource"]
    study.update(change)
    if not dated:
        del study["authoredOn"]
    return request


def imaging_cards(client: TestClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    return cards_for(client.post(SELECT, json=request).json(), RULE)


def test_a_lumbar_mri_of_no_recorded_date_may_be_recent(client: TestClient) -> None:
    assert imaging_cards(client, with_imaging({}, dated=False)) == []
    assert len(imaging_cards(client, with_imaging({"authoredOn": (TODAY - timedelta(days=400)).isoformat()}))) == 1


@pytest.mark.parametrize(
    "code",
    [
        {"text": "Physical therapy evaluation and treatment, low back"},
        {"coding": [{"system": CPT, "code": "72141", "display": "MRI cervical spine without contrast"}]},
    ],
)
def test_a_recent_procedure_that_is_not_lumbar_imaging_does_not_silence_the_card(
    client: TestClient, code: dict[str, Any]
) -> None:
    [card] = imaging_cards(client, with_imaging({"code": code}))
    assert "No lumbar MRI or CT from the last 365 days was found in the record." in card["detail"]


def test_a_lumbar_mri_booked_ahead_keeps_the_card_silent(client: TestClient) -> None:
    """A routine MRI ordered and booked for next month is the workup the card asks for: the
    MRI it would offer repeats it (unlike the red flag's STAT MRI, tests/test_red_flag_imaging.py)."""
    later = {"status": "active", "occurrenceDateTime": (TODAY + timedelta(days=60)).isoformat()}
    assert imaging_cards(client, with_imaging(later)) == []
    old_order = {**later, "authoredOn": (TODAY - timedelta(days=400)).isoformat()}
    assert imaging_cards(client, with_imaging(old_order)) == []


def test_the_card_says_only_what_the_codes_read_show(client: TestClient) -> None:
    """A lumbar MRI of 18 days ago recorded in words alone (or in LOINC) is not recognised: the
    card said "No lumbar MRI or CT is on record", untrue beside it (QA round 2, F3e). It now says
    what the service can know (docs/configuration.md, known terminology gaps)."""
    done = {"code": {"text": "MRI L-spine without contrast"}, "authoredOn": (TODAY - timedelta(days=18)).isoformat()}
    [card] = imaging_cards(client, with_imaging(done))
    assert "is on record" not in card["detail"]
    assert "No lumbar MRI or CT from the last 365 days was found in the record." in card["detail"]
