"""Requests captured from a real sandbox session (a local build driven in headless Chromium).

Each capture is replayed as sent, then the session's feedback in the sandbox's own shape:
what the integrator saw must stay what the tests see.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, SIGN, cards_for, fixture, rule_ids

RX_VIEW_DSTU2 = "sandbox/rx-view-dstu2-order-select.json"


@pytest.mark.parametrize(
    ("capture", "path", "expected"),
    [
        # The session's patient has fatty liver, which since v2 is not hepatic impairment.
        (RX_VIEW_DSTU2, SELECT, ["cyclobenzaprine-duration"]),
        (
            "sandbox/rx-sign-order-sign.json",
            SIGN,
            ["cyclobenzaprine-duration", "refractory-spasm-imaging", "muscle-relaxant-class-switch"],
        ),
        ("sandbox/pama-lumbar-mri-order-select.json", SELECT, []),
    ],
)
def test_each_sandbox_screen_gets_the_cards_it_showed(
    client: TestClient, capture: str, path: str, expected: list[str]
) -> None:
    response = client.post(path, json=fixture(capture))
    assert response.status_code == 200, response.text
    assert rule_ids(response.json()) == expected


def _refire(client: TestClient) -> dict[str, Any]:
    """The sandbox re-fires with a fresh hookInstance and the same draft."""
    response = client.post(SELECT, json={**fixture(RX_VIEW_DSTU2), "hookInstance": str(uuid.uuid4())})
    assert response.status_code == 200, response.text
    return response.json()


def _feedback(client: TestClient, item: dict[str, Any]) -> None:
    response = client.post(f"{SELECT}/feedback", json={"feedback": [item]})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "stored": 1}


def test_an_accepted_limit_the_sandbox_did_not_apply_comes_back_when_it_refires(client: TestClient) -> None:
    """The session's own steps: "Limit to 21 days" is accepted (the sandbox posts this feedback),
    the sandbox applies only a suggestion's medication coding, so the draft still orders 30 days
    and its next call (any edit re-fires Rx View) must bring the duration card back."""
    (duration,) = cards_for(_refire(client), "cyclobenzaprine-duration")
    [limit] = [s for s in duration["suggestions"] if s["label"].startswith("Limit to 21 days")]
    _feedback(
        client,
        {
            "card": duration["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": limit["uuid"]}],
            "outcomeTimestamp": "2026-11-21T09:56:09.279Z",
        },
    )
    (again,) = cards_for(_refire(client), "cyclobenzaprine-duration")
    assert again["summary"] == duration["summary"] and again["uuid"] != duration["uuid"]


def test_a_dismissal_with_a_reason_from_the_menu_is_stored(client: TestClient) -> None:
    (duration,) = cards_for(_refire(client), "cyclobenzaprine-duration")
    reason = duration["overrideReasons"][0]
    _feedback(
        client,
        {
            "card": duration["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-21T09:56:37.091Z",
            "overrideReason": {"reason": {"code": reason["code"], "system": reason["system"]}},
        },
    )
    metrics = client.get("/metrics").text
    assert 'cds_feedback_total{outcome="overridden"} 1.0' in metrics
