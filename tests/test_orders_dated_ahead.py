"""An active order dated after the site's today is taken alongside the draft: an EHR a day
ahead of the site's zone (``CDS_TIMEZONE`` unset reads UTC) writes tomorrow's ``authoredOn``, and
a start planned for the coming days still runs beside the new draft. Read as a course not begun,
it dropped every interaction check that reads the courses taken today, critical ones included,
with no word."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TODAY, answered, fixture, rule_ids

TOMORROW = (TODAY + timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def _dated_ahead(request: dict[str, Any], status: str) -> dict[str, Any]:
    for entry in request["prefetch"]["medications"]["entry"]:
        resource = entry["resource"]
        if resource.get("resourceType") == "MedicationRequest" and resource.get("status") == "active":
            resource["authoredOn"] = TOMORROW
            resource["status"] = status
    return request


@pytest.mark.parametrize("status", ["active", "on-hold"])
@pytest.mark.parametrize(
    ("name", "rule"),
    [
        (
            "tizanidine-cyp1a2-inhibitor/fires-ciprofloxacin-ordered-tizanidine-active.json",
            "tizanidine-cyp1a2-inhibitor",
        ),
        ("cyclobenzaprine-serotonergic/fires-sertraline-active.json", "cyclobenzaprine-serotonergic"),
        (
            "muscle-relaxant-cns-depressant/fires-age-70-opioid-and-gabapentinoid-beers.json",
            "muscle-relaxant-cns-depressant",
        ),
    ],
)
def test_an_active_order_dated_tomorrow_is_still_checked_against(
    client: TestClient, name: str, rule: str, status: str
) -> None:
    assert rule in rule_ids(answered(client, fixture(name)))
    assert rule in rule_ids(answered(client, _dated_ahead(fixture(name), status)))


def test_a_finished_order_dated_tomorrow_is_not_taken_today(client: TestClient) -> None:
    """Only an order still in force: one marked completed is no course running beside the draft."""
    name = "cyclobenzaprine-serotonergic/fires-sertraline-active.json"
    assert "cyclobenzaprine-serotonergic" not in rule_ids(answered(client, _dated_ahead(fixture(name), "completed")))


def test_a_course_dated_ahead_is_not_said_to_run_since_a_day_to_come(client: TestClient) -> None:
    """Taken alongside the draft, an active order dated tomorrow was named "(since <tomorrow>)"."""
    name = "cyclobenzaprine-serotonergic/fires-sertraline-active.json"
    card = answered(client, _dated_ahead(fixture(name), "active"))["cards"][0]
    assert f"Sertraline 50 MG Oral Tablet (active; course from {TOMORROW})" in card["detail"], card["detail"]
