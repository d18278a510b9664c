"""The duration card reads a draft's dated steps as a taper's: a step that dates its start but no
end runs on, so its dates say no last day and the next source (its quantity) says how long, as
for one open-ended instruction. Left out, an open-ended first step's days were lost from the
course and a 30-day order had no card."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture

UCUM = "http://unitsofmeasure.org"
DRAFT = "cyclobenzaprine-duration/silent-21-days.json"


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def step(times: int, start: str, end: str | None = None) -> dict[str, Any]:
    period = {"start": start} if end is None else {"start": start, "end": end}
    repeat = {"frequency": times, "period": 1, "periodUnit": "d", "boundsPeriod": period}
    return {
        "timing": {"repeat": repeat},
        "doseAndRate": [{"doseQuantity": {"value": 1, "system": UCUM, "code": "{tbl}"}}],
    }


def duration_cards(client: TestClient, dosages: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    request = fixture(DRAFT)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"] = dosages
    draft["dispenseRequest"] = {"quantity": {"value": count, "unit": "tablet"}}
    return cards_for(answered(client, request), "cyclobenzaprine-duration")


def test_an_open_ended_step_before_a_dated_one_is_planned_by_its_quantity(client: TestClient) -> None:
    """Three a day from 11-21 with no end, then three a day from 12-01 to 12-20: 90 tablets at
    three a day last 30 days, over the limit. The dated step's 20 days alone had been read."""
    [card] = duration_cards(client, [step(3, "2026-11-21"), step(3, "2026-12-01", "2026-12-20")], 90)
    assert "30 days planned" in card["summary"]
    assert card["indicator"] == "warning"
