"""What keeps a card quiet, and what brings it back, through the HTTP surface.

Snooze: a clinician who overrides a warning or info card with the explicit reason "Don't show
again for this patient (N days)" is not shown that rule's cards of that indicator or a lower one
(an info card snoozed leaves the rule's warnings shown) again for the same patient for a while
(``CDS_SNOOZE_DAYS``, or the rule's own ``snooze_days``); any other override, or a bare Dismiss,
snoozes nothing, and a critical card always gets through. An accepted card comes back while its
rule still applies (the client may not have applied the suggestion). Order-sign does not repeat
a non-critical card order-select showed the same day for the unchanged draft.

Alert fatigue is the failure this guards against, and missing a critical card is the failure it must
not cause, so both directions are tested: cards issued, feedback sent, and the app's clock moved on
(never a sleep) to just inside and just past the snooze period.

The fixtures and calls this package's modules share.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.settings import Settings
from tests.conftest import SELECT, TODAY, Clock, cards_for, fixture

FEEDBACK = f"{SELECT}/feedback"
REASON_SYSTEM = "urn:back-spasm-cds:override-reason"
SNOOZE_REASON = "dont-show-again"
DURATION = "cyclobenzaprine-duration"
HEPATIC = "cyclobenzaprine-hepatic-impairment"
MAOI = "cyclobenzaprine-maoi"
DURATION_WARNING = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
DURATION_INFO = "cyclobenzaprine-duration/fires-unknown-duration.json"
# Fatty liver and 10 mg: the hepatic warning (the 30-day supply also brings the duration warning).
HEPATIC_WARNING = "cyclobenzaprine-hepatic-impairment/fires-warning-hepatitis-c-10mg.json"
HEPATIC_CRITICAL = (
    "cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json",
    "cyclobenzaprine-hepatic-impairment/fires-critical-severity-severe-on-hepatitis-c.json",
)
MAOI_CRITICAL = "cyclobenzaprine-maoi/fires-phenelzine-active.json"
# Every fixture used here is for this patient (checked in `request`); OTHER_PATIENT is a copy.
PATIENT = "harness-pt-1"
OTHER_PATIENT = "another-patient"
# The morning of the fixtures' "today": cards are issued and overridden at this instant.
START = datetime(TODAY.year, TODAY.month, TODAY.day, 10, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def service(make_client: Callable[..., TestClient], clock: Clock) -> TestClient:
    return make_client(clock=clock)


@pytest.fixture
def service_from_environment(tmp_path: Path, clock: Clock) -> Iterator[Callable[[], TestClient]]:
    """Clients whose settings are read from the environment as set by the test (as in test_configuration)."""
    clients: list[TestClient] = []

    def make() -> TestClient:
        settings = Settings(data_dir=tmp_path / "env-var", fhir_deadline_seconds=1.0, auth_mode="off")
        client = TestClient(create_app(settings, clock=clock))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def request(name: str, patient_id: str = PATIENT, *, draft_id: str | None = None) -> dict[str, Any]:
    """A fixture for ``patient_id`` (context, Patient resource and every subject reference), optionally
    with its draft order renamed, as when the same patient has another order."""
    original = fixture(name)
    assert original["context"]["patientId"] == PATIENT, name
    text = json.dumps(original).replace(f'"{PATIENT}"', f'"{patient_id}"')
    text = text.replace(f'"Patient/{PATIENT}"', f'"Patient/{patient_id}"')
    if draft_id is not None:
        [draft] = [e["resource"] for e in original["context"]["draftOrders"]["entry"]]
        old = f"{draft['resourceType']}/{draft['id']}"
        text = text.replace(f'"{draft["id"]}"', f'"{draft_id}"').replace(
            f'"{old}"', f'"{draft["resourceType"]}/{draft_id}"'
        )
    return json.loads(text)


def call(client: TestClient, name: str, patient_id: str = PATIENT, **changes: Any) -> dict[str, Any]:
    response = client.post(SELECT, json=request(name, patient_id, **changes))
    assert response.status_code == 200, response.text
    return response.json()


def only_card(body: dict[str, Any], rule_id: str) -> dict[str, Any]:
    [card] = cards_for(body, rule_id)
    return card


def reason_codes(card: dict[str, Any]) -> list[str]:
    return [reason["code"] for reason in card.get("overrideReasons", [])]


def override(client: TestClient, card: dict[str, Any], reason: str | None = SNOOZE_REASON, **extra: Any) -> None:
    """Dismiss ``card`` as the sandbox does (code and system, no display), at the client's stated time."""
    item: dict[str, Any] = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
    if reason is not None:
        item["overrideReason"] = {"reason": {"system": REASON_SYSTEM, "code": reason}}
    item.update(extra)
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "stored": 1}


def accept(client: TestClient, card: dict[str, Any]) -> None:
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-11-21T10:00:00Z",
    }
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "stored": 1}
