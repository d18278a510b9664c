"""The MAO inhibitor's dates (``cyclobenzaprine-maoi``): a stopped order of unknown stop date is
certainly inside the 14-day washout only when its earliest possible start is; it is in the 365-day
look-back when its latest possible start is; a still-listed order is asked about for 365 days
after its supply's last day, read as late as a month alone allows, and never from after today."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SELECT, TODAY, ago, cards_for, fixture

RULE = "cyclobenzaprine-maoi"
THIS_MONTH = TODAY.strftime("%Y-%m")  # begun 20 days ago
LAST_YEAR = TODAY.year - 1


@pytest.fixture(scope="module")
def client(module_client: TestClient) -> TestClient:
    return module_client


def stopped(authored: str) -> dict[str, Any]:
    """Phenelzine, stopped, no duration or stop date, ordered on ``authored``."""
    request = fixture(f"{RULE}/fires-maoi-stop-date-unknown-v2-warning.json")
    request["prefetch"]["medications"]["entry"][0]["resource"]["authoredOn"] = authored
    return request


def listed(authored: str, supply_days: int) -> dict[str, Any]:
    """Phenelzine still listed active, ordered on ``authored`` for ``supply_days`` days."""
    request = fixture(f"{RULE}/fires-maoi-active-planned-end-passed-confirm-last-dose.json")
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    order["authoredOn"] = authored
    order["dispenseRequest"]["expectedSupplyDuration"]["value"] = supply_days
    return request


def card(client: TestClient, request: dict[str, Any]) -> dict[str, Any] | None:
    cards = cards_for(client.post(SELECT, json=request).json(), RULE)
    return cards[0] if cards else None


def indicator(client: TestClient, request: dict[str, Any]) -> str | None:
    found = card(client, request)
    return found["indicator"] if found else None


@pytest.mark.parametrize(("days", "expected"), [(13, "critical"), (14, "warning")])
def test_a_stopped_maoi_ordered_14_days_ago_may_have_been_last_taken_past_the_washout(
    client: TestClient, days: int, expected: str
) -> None:
    """Ordered 13 days ago, any dose was inside the 14 days; ordered 14 days ago, not certainly."""
    assert indicator(client, stopped(ago(days))) == expected


@pytest.mark.parametrize("authored", [THIS_MONTH, str(TODAY.year)])
def test_a_stopped_maoi_of_a_month_or_year_alone_is_inside_the_washout_only_from_its_first_day(
    client: TestClient, authored: str
) -> None:
    """Written this month (its 1st 20 days ago) or this year: perhaps long before the washout."""
    found = card(client, stopped(authored))
    assert found is not None and found["indicator"] == "warning"
    assert f"ordered in {authored}, day not recorded" in found["summary"]


@pytest.mark.parametrize(
    ("authored", "expected"),
    [(f"{LAST_YEAR}-{TODAY.month:02d}", "warning"), (str(LAST_YEAR), "warning"), (f"{LAST_YEAR}-10", None)],
)
def test_a_stopped_maoi_of_a_month_or_year_alone_is_in_the_look_back_if_its_last_day_may_be(
    client: TestClient, authored: str, expected: str | None
) -> None:
    """The look-back began 365 days ago, on the 21st of this month last year: a month or year
    alone that runs past it may have been written inside it; last October may not."""
    assert indicator(client, stopped(authored)) == expected


@pytest.mark.parametrize("days", [365, 366, 3000])
def test_a_listed_maoi_whose_supply_ended_long_ago_is_still_asked_about(client: TestClient, days: int) -> None:
    """No look-back for a list that says taken: a long-term inhibitor often stands on it as an old
    order (a refill elsewhere)."""
    assert indicator(client, listed(ago(days + 29), 30)) == "warning"


def test_a_listed_maoi_of_a_month_alone_ended_its_supply_as_late_as_the_month_allows(client: TestClient) -> None:
    """30 days from the 31st of last October: the planned course ended by 29 November last year, in the
    look-back (from its first day it ended on 30 October, before it)."""
    found = card(client, listed(f"{LAST_YEAR}-10", 30))
    assert found is not None and found["indicator"] == "warning"
    assert f"planned course ended by {LAST_YEAR}-11-29" in found["summary"]


def test_a_listed_maoi_of_this_month_alone_was_written_today_at_the_latest(client: TestClient) -> None:
    """5 days from its 1st ended 16 days ago; written today at the latest, it runs 4 more days."""
    found = card(client, listed(THIS_MONTH, 5))
    assert found is not None and found["indicator"] == "critical"
    assert f"its supply may run to {(TODAY + timedelta(days=4)).isoformat()})" in found["detail"]


def test_a_site_washout_longer_than_the_labels_is_not_contradicted_by_the_override_reason(
    defaults: Callable[..., TestClient],
) -> None:
    """A site's 21-day washout: the reason offered on its card said "washout complete (14 days; …)",
    inviting the override the site meant to forbid for an inhibitor stopped 14 days ago."""
    client = defaults(auth_mode="off", rules={"cyclobenzaprine_maoi": {"washout_days": 21}})
    found = card(client, fixture(f"{RULE}/silent-maoi-last-day-14-days-ago-v2-inclusive-end.json"))
    assert found is not None and "within 21 days of stopping one" in found["detail"]
    [reason] = [r for r in found["overrideReasons"] if r["code"] == "washout-complete"]
    assert not re.search(r"\d", reason["display"]), reason["display"]
