"""'Today' is the site's day (CDS_TIMEZONE): record dates are the site's own, so a site west of
UTC must not reach tomorrow in its afternoon, losing a critical card until midnight."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.cli import main
from cds_service.settings import read_settings
from tests.conftest import FIXTURES, SELECT, SIGN, TODAY, Clock, fixture, rule_ids

MAOI = "cyclobenzaprine-maoi"
# Phenelzine's last day 2026-11-08: 13 days before 2026-11-21, inside the 14-day washout.
LAST_DAY_13_DAYS_AGO = "cyclobenzaprine-maoi/fires-maoi-last-day-13-days-ago-v2-inclusive-end.json"
# Linezolid's last day 2026-11-21, today: inside its 24-hour washout.
LINEZOLID_TODAY = "cyclobenzaprine-maoi/fires-linezolid-last-day-today-v2-24-hour-washout.json"
HONOLULU = "Pacific/Honolulu"  # UTC−10: 15:00 on 21 November is 01:00 UTC on the 22nd


def _at(utc: str) -> Clock:
    return Clock(datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp())


@pytest.mark.parametrize(("timezone", "fires"), [(HONOLULU, True), ("UTC", False)])
def test_the_rules_count_days_where_the_site_is(
    make_client: Callable[..., TestClient], timezone: str, fires: bool
) -> None:
    """At 15:00 in Honolulu the washout has one day left; counted in UTC days it was over."""
    client = make_client(clock=_at("2026-11-22T01:00:00"), timezone=timezone)
    body = client.post(SELECT, json=fixture(LAST_DAY_13_DAYS_AGO)).json()
    assert (MAOI in rule_ids(body)) is fires


@pytest.mark.parametrize(
    ("course", "end", "fires"),
    [
        (LINEZOLID_TODAY, "2026-11-20T23:00:00Z", True),  # 08:00 on the 21st in Tokyo: not over yet
        (LAST_DAY_13_DAYS_AGO, "2026-11-07T20:00:00Z", True),  # 05:00 on the 8th in Tokyo: 13 days ago
        # 23:00 on the 7th in Tokyo, 14 days ago by the calendar, but 13 days 2 hours by the clock:
        # inside the washout (a time bounds the last dose: ``test_maoi_hours``)
        (LAST_DAY_13_DAYS_AGO, "2026-11-07T14:00:00Z", True),
        (LAST_DAY_13_DAYS_AGO, "2026-11-06T14:00:00Z", False),  # 23:00 on the 6th: 15 days ago, 14 days 2 hours
    ],
)
def test_a_washout_counts_from_the_site_day_an_end_in_utc_falls_on(
    make_client: Callable[..., TestClient], course: str, end: str, fires: bool
) -> None:
    """East of UTC an end written in UTC falls on a later day where the site is: the washout
    counted from its UTC day ended a day early, and the critical card was lost (01:00 in Tokyo)."""
    client = make_client(clock=_at("2026-11-20T16:00:00"), timezone="Asia/Tokyo")
    request = fixture(course)
    [prior] = [e["resource"] for e in request["prefetch"]["medications"]["entry"]]
    prior["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["end"] = end
    assert (MAOI in rule_ids(client.post(SELECT, json=request).json())) is fires


def _signed(body: dict[str, Any]) -> dict[str, Any]:
    signing = {**body, "hook": "order-sign", "hookInstance": "sign-1"}
    signing["context"] = {k: v for k, v in body["context"].items() if k != "selections"}
    return signing


@pytest.mark.parametrize(("timezone", "repeated"), [(HONOLULU, False), ("UTC", True)])
def test_order_sign_repeats_nothing_order_select_showed_the_same_site_day(
    make_client: Callable[..., TestClient], timezone: str, repeated: bool
) -> None:
    """13:50 and 14:10 in Honolulu are one day there, two in UTC (midnight falls between)."""
    clock = _at("2026-11-21T23:50:00")
    client = make_client(clock=clock, timezone=timezone)
    body = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    assert rule_ids(client.post(SELECT, json=body).json()) == ["cyclobenzaprine-duration"]
    clock.set(minutes=20)
    signed = rule_ids(client.post(SIGN, json=_signed(body)).json())
    assert signed == (["cyclobenzaprine-duration"] if repeated else [])


def test_evaluate_today_is_that_date_where_the_site_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--today 2026-11-21 at UTC+14 was 22 November there (noon UTC), and the card was lost."""
    monkeypatch.setenv("CDS_TIMEZONE", "Pacific/Kiritimati")
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["evaluate", str(FIXTURES / LAST_DAY_13_DAYS_AGO), "--today", TODAY.isoformat()]) == 0
    assert '"code": "cyclobenzaprine-maoi"' in capsys.readouterr().out


def test_an_unknown_time_zone_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CDS_TIMEZONE", "Mars/Olympus_Mons")
    monkeypatch.setattr("cds_service.cli.get_settings", read_settings)
    assert main(["rules"]) == 2
    assert "timezone: not a time zone name" in capsys.readouterr().err
