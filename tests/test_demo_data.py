"""The demo patients keep their story on any day they are loaded (``tools/demo_data.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, TODAY, Clock, fixture, for_patient, rule_ids

ROOT = Path(__file__).resolve().parent.parent
LATER = date(2027, 9, 14)


def _bundle(today: date) -> dict[str, Any]:
    """The bundle as the documented command prints it for ``today``."""
    command = [sys.executable, str(ROOT / "tools" / "demo_data.py"), "--today", today.isoformat()]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def _request(bundle: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """The sandbox's 10 mg order for a demo patient, with the bundle's records as prefetch."""
    request = for_patient(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"), patient_id)
    resources = [e["resource"] for e in bundle["entry"]]
    mine = [
        r
        for r in resources
        if r["id"] == patient_id or r.get("subject", {}).get("reference") == f"Patient/{patient_id}"
    ]

    def search(resource_type: str) -> dict[str, Any]:
        entries = [{"resource": r} for r in mine if r["resourceType"] == resource_type]
        return {"resourceType": "Bundle", "type": "searchset", "entry": entries}

    request["prefetch"] = {
        "patient": next(r for r in mine if r["resourceType"] == "Patient"),
        "conditions": search("Condition"),
        "medications": search("MedicationRequest"),
        "imaging": search("ServiceRequest"),
    }
    return request


def test_every_date_moves_by_the_days_since_the_anchor() -> None:
    anchored, later = _bundle(TODAY), _bundle(LATER)
    assert anchored == json.loads((ROOT / "fixtures" / "fhir" / "demo-patients.json").read_text())
    shift = (LATER - TODAY).days
    for before, after in zip(anchored["entry"], later["entry"], strict=True):
        for key in ("birthDate", "onsetDateTime", "authoredOn"):
            if key in before["resource"]:
                moved = date.fromisoformat(before["resource"][key]) + (LATER - TODAY)
                assert after["resource"][key] == moved.isoformat(), (key, shift)


@pytest.mark.parametrize("patient_id", ["harness-pt-1", "demo-hepatic", "demo-refractory"])
def test_a_demo_patient_gets_the_same_cards_on_the_day_it_is_loaded(
    make_client: Callable[..., TestClient], patient_id: str
) -> None:
    def cards_on(day: date) -> list[str]:
        clock = Clock(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp())
        return rule_ids(make_client(clock=clock).post(SELECT, json=_request(_bundle(day), patient_id)).json())

    today_cards = cards_on(TODAY)
    assert today_cards  # each demo patient shows something in the walk-through
    assert cards_on(LATER) == today_cards
