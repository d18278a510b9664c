"""The service's one clock: every date and time the service uses comes from ``create_app(clock=...)``.

The suite must pass on any day it runs, so no test may depend on the wall clock and no code
may read it behind the clock's back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import SELECT, Clock, fixture

PACKAGE = Path(__file__).resolve().parent.parent / "cds_service"
# Every way of asking the system for the current date or time, outside the one clock.
WALL_CLOCK = re.compile(r"\b(time\.time|time\.localtime|time\.gmtime|date\.today|datetime\.(now|utcnow|today))\(")
FAR_AWAY = datetime(2031, 6, 15, 9, 30, tzinfo=UTC)


def test_nothing_reads_the_wall_clock_but_the_clock_module() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "clock.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if WALL_CLOCK.search(line)
    ]
    assert offenders == []


def test_analytics_and_the_report_follow_the_clock_far_from_the_fixtures_dates(
    make_client: Callable[..., TestClient],
) -> None:
    clock = Clock(FAR_AWAY.timestamp())
    client = make_client(clock=clock)
    card = client.post(SELECT, json=fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")).json()
    uuid = card["cards"][0]["uuid"]
    feedback = {"card": uuid, "outcome": "overridden", "outcomeTimestamp": "2031-06-15T09:31:00Z"}
    assert client.post(f"{SELECT}/feedback", json={"feedback": [feedback]}).status_code == 200

    figures = client.get("/analytics", params={"period": "day"}).json()
    assert (figures["from"], figures["to"]) == ("2031-05-17", "2031-06-15")
    assert figures["totals"]["issued"] == 1 and figures["totals"]["overridden"] == 1
    assert figures["rules"][0]["periods"] == [
        {
            "start": "2031-06-15",
            "issued": 1,
            "accepted": 0,
            "overridden": 1,
            "ignored": 0,
            "acceptance_rate": 0.0,
            "override_rate": 1.0,
            "cards_shown": 1,
        }
    ]
    page = client.get("/analytics/report", params={"period": "day"}).text
    assert 'aria-label="Accepted 0, Overridden 1, Ignored 0 of 1 alerts' in page

    clock.set(days=40)  # the card is now outside the default 30-day range
    assert client.get("/analytics").json()["totals"]["issued"] == 0
