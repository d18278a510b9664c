"""Analytics on both databases: what an informaticist reads in ``/analytics``, the report page and
the report command must be exactly what clinicians did, one alert however often its draft fired."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.pipeline.knowledge import Knowledge
from cds_service.settings import Settings
from tests.conftest import NOON, SELECT, TODAY, Clock, fixture
from tests.feedback_calls import DAY_1, by_rule, issued, overridden, send_feedback
from tests.serving import CLI


def test_a_draft_refired_or_edited_five_times_is_one_alert(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """The issue's "done when": the sandbox re-fires order-select on every edit. Five calls for one
    draft (two re-fires as sent, three edits of its duration), then order-sign after one more edit:
    one duration alert, overridden, with six cards shown; the same draft the next day is a new alert."""
    clock = Clock(DAY_1.timestamp())
    client = make_client(database_url=database_url, clock=clock)
    name = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
    shown = [issued(client, name)["cyclobenzaprine-duration"] for _ in range(2)]
    for days in (28, 35, 60):
        edit = fixture(name)
        edit["context"]["draftOrders"]["entry"][0]["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] = (
            days
        )
        response = client.post(SELECT, json=edit)
        assert response.status_code == 200, response.text
        [card] = response.json()["cards"]
        shown.append(card)
    send_feedback(client, overridden(shown[1], "already-addressed"), overridden(shown[4], "already-addressed"))
    # Signed after one more edit (order-select had not shown this one, so order-sign does).
    signing = {**fixture(name), "hook": "order-sign"}
    signing["context"]["draftOrders"]["entry"][0]["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] = 90
    response = client.post("/cds-services/back-spasm-order-sign", json=signing)
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == ["cyclobenzaprine-duration"]

    body = client.get("/analytics", params={"from": "2026-11-20", "to": "2026-11-20"}).json()
    [duration] = body["rules"]
    assert {k: duration[k] for k in ("issued", "accepted", "overridden", "ignored", "cards_shown")} == {
        "issued": 1,
        "accepted": 0,
        "overridden": 1,
        "ignored": 0,
        "cards_shown": 6,
    }
    assert duration["override_rate"] == 1.0
    assert [(r["code"], r["count"]) for r in duration["override_reasons"]] == [("already-addressed", 1)]
    clock.set(days=1)
    issued(client, name)
    week = client.get("/analytics", params={"from": "2026-11-20", "to": "2026-11-21"}).json()
    assert (week["totals"]["issued"], week["totals"]["ignored"], week["totals"]["cards_shown"]) == (2, 1, 7)


def test_analytics_count_each_alert_by_what_became_of_it(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    clock = Clock(DAY_1.timestamp())
    client = make_client(database_url=database_url, clock=clock)
    first = issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    several = issued(client, "multiple-rules/av-block-resolved-sertraline-70.json")
    clock.set(days=1)
    issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    older, serotonergic = several["cyclobenzaprine-older-adult"], several["cyclobenzaprine-serotonergic"]
    accepted = {
        "card": first["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": first["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-11-21T10:00:00Z",
    }
    send_feedback(client, accepted, overridden(older, "benefit-outweighs-risk"), overridden(serotonergic))
    send_feedback(client, overridden(older, "benefit-outweighs-risk"))  # resent: the same item

    body = client.get("/analytics", params={"from": "2026-11-20", "to": "2026-11-21", "period": "day"}).json()
    assert body["counts"].startswith(
        "alerts: one rule for one patient's draft order (same draft id) on one day at the site"
    )
    # Both requests of DAY_1 are the same patient's draft request-123: its two duration cards
    # are one alert (accepted); DAY_2's card is another alert (ignored).
    assert body["totals"] == {
        "issued": 4,
        "accepted": 1,
        "overridden": 2,
        "ignored": 1,
        "acceptance_rate": 0.25,
        "override_rate": 0.5,
        "cards_shown": 5,
    }
    rules = by_rule(body)
    assert set(rules) == {"cyclobenzaprine-duration", "cyclobenzaprine-older-adult", "cyclobenzaprine-serotonergic"}
    duration = rules["cyclobenzaprine-duration"]
    assert (duration["issued"], duration["accepted"], duration["ignored"], duration["cards_shown"]) == (2, 1, 1, 3)
    assert [(p["start"], p["issued"], p["accepted"], p["cards_shown"]) for p in duration["periods"]] == [
        ("2026-11-20", 1, 1, 2),
        ("2026-11-21", 1, 0, 1),
    ]
    assert rules["cyclobenzaprine-older-adult"]["override_reasons"] == [
        {
            "system": "urn:back-spasm-cds:override-reason",
            "code": "benefit-outweighs-risk",
            "display": "Benefit outweighs risk for this patient",
            "count": 1,
        }
    ]
    assert rules["cyclobenzaprine-serotonergic"]["override_reasons"] == [
        {"system": None, "code": None, "display": "No reason given", "count": 1}
    ]

    weekly = client.get("/analytics", params={"from": "2026-11-20", "to": "2026-11-21"}).json()
    assert [p["start"] for p in by_rule(weekly)["cyclobenzaprine-duration"]["periods"]] == ["2026-11-16"]
    second_day = client.get("/analytics", params={"from": "2026-11-21", "to": "2026-11-21"}).json()
    assert {r["rule_id"]: r["issued"] for r in second_day["rules"]} == {"cyclobenzaprine-duration": 1}


def test_a_reason_of_the_service_is_named_as_its_cards_name_it_whatever_display_came(
    make_client: Callable[..., TestClient],
) -> None:
    """A client's display is free text: one naming the patient stood, in every client's figures
    and the report, for everyone who gave that reason. A client's own code is named by its code."""
    client = make_client()
    card = issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    item = overridden(card, "benefit-outweighs-risk")
    item["overrideReason"]["reason"]["display"] = "Patient Tessa Harness (MRN 12345) insisted"
    send_feedback(client, item)
    card = issued(client, "cyclobenzaprine-older-adult/fires-age-65-10mg.json")["cyclobenzaprine-older-adult"]
    item = overridden(card)
    item["overrideReason"] = {"reason": {"system": "urn:site:reasons", "code": "r7", "display": "Site reason 7"}}
    send_feedback(client, item)
    body = client.get("/analytics", params={"from": "2026-11-21", "to": "2026-11-21"}).json()
    [reason] = by_rule(body)["cyclobenzaprine-duration"]["override_reasons"]
    assert reason["display"] == "Benefit outweighs risk for this patient"
    [site] = by_rule(body)["cyclobenzaprine-older-adult"]["override_reasons"]
    assert (site["system"], site["code"], site["display"]) == ("urn:site:reasons", "r7", "r7")
    assert "Tessa" not in client.get("/analytics/report", params={"from": "2026-11-21", "to": "2026-11-21"}).text


def test_the_report_names_a_snooze_as_the_card_offered_it(make_client: Callable[..., TestClient]) -> None:
    """The sandbox sends the reason's code alone: the report named it "(30)", the card "(30 days)"."""
    client = make_client()
    card = issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    [offered] = [r for r in card["overrideReasons"] if r["code"] == "dont-show-again"]
    send_feedback(client, overridden(card, "dont-show-again"))
    body = client.get("/analytics", params={"from": "2026-11-21", "to": "2026-11-21"}).json()
    [reason] = by_rule(body)["cyclobenzaprine-duration"]["override_reasons"]
    assert reason["display"] == offered["display"] == "Don't show again for this patient (30 days)"


def test_a_snooze_given_before_the_rule_stopped_snoozing_is_named_without_a_period(
    make_client: Callable[..., TestClient],
) -> None:
    """A site set the rule's snooze to 0 days after a clinician chose "Don't show again": the
    report named that choice "(0 days)", a period nobody was offered. It names it by its code."""
    card = issued(make_client(), "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")[
        "cyclobenzaprine-duration"
    ]
    send_feedback(make_client(), overridden(card, "dont-show-again"))
    body = make_client(snooze_days=0).get("/analytics", params={"from": "2026-11-21", "to": "2026-11-21"}).json()
    [reason] = by_rule(body)["cyclobenzaprine-duration"]["override_reasons"]
    assert (reason["code"], reason["display"]) == ("dont-show-again", "dont-show-again")


def test_a_snooze_sent_for_a_critical_card_is_named_as_not_offered(make_client: Callable[..., TestClient]) -> None:
    """A client's bug: "don't show again" for a critical card, which never offers it. Stored (the
    override is real) and snoozing nothing, it was reported as "(30 days)", the snooze the rule's
    warning cards offer: a committee would read a critical alert snoozed for a month."""
    client = make_client()
    card = issued(client, "cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json")[
        "cyclobenzaprine-hepatic-impairment"
    ]
    assert card["indicator"] == "critical" and "dont-show-again" not in {r["code"] for r in card["overrideReasons"]}
    send_feedback(client, overridden(card, "dont-show-again"))
    body = client.get("/analytics", params={"from": "2026-11-21", "to": "2026-11-21"}).json()
    [reason] = by_rule(body)["cyclobenzaprine-hepatic-impairment"]["override_reasons"]
    assert reason["display"] == "dont-show-again (not offered: critical cards are never snoozed)"
    page = client.get("/analytics/report", params={"from": "2026-11-21", "to": "2026-11-21"}).text
    assert "30 days" not in page


def test_an_alert_overridden_once_and_accepted_later_counts_as_accepted(make_client: Callable[..., TestClient]) -> None:
    """The sandbox re-fires: the clinician dismissed the duration card, edited, then took its
    21-day limit on the next card of the same draft. One alert, accepted, not also overridden,
    and no reason to override it counted (the reasons are the overridden alerts')."""
    client = make_client(clock=Clock(DAY_1.timestamp()))
    name = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
    dismissed, taken = (issued(client, name)["cyclobenzaprine-duration"] for _ in range(2))
    accepted = {
        "card": taken["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": taken["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-11-20T10:05:00Z",
    }
    send_feedback(client, overridden(dismissed, "already-addressed"), accepted)
    [duration] = client.get("/analytics", params={"from": "2026-11-20", "to": "2026-11-20"}).json()["rules"]
    assert (duration["issued"], duration["accepted"], duration["overridden"], duration["cards_shown"]) == (1, 1, 0, 2)
    assert duration["override_reasons"] == []


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"from": "2026-02-30"}, "from", "is not a date"),
        ({"to": "yesterday"}, "to", "is not a date"),
        # Python 3.11 reads ISO 8601's basic and week forms too: only the form the message names.
        ({"from": "20261101"}, "from", "'20261101' is not a date (YYYY-MM-DD)"),
        ({"to": "2026-W47-6"}, "to", "'2026-W47-6' is not a date (YYYY-MM-DD)"),
        ({"to": "2026-11-2"}, "to", "is not a date"),
        ({"from": "2026-11-01T00:00"}, "from", "is not a date"),
        # A misspelt parameter was passed over: the default range answered as though asked for.
        ({"FROM": "2026-11-01"}, "FROM", "'FROM': not a parameter of the analytics, which are from, to, period"),
        ({"from": "2026-11-01", "form": "2026-11-01"}, "form", "'form': not a parameter"),
        ({"_": "1732190000000"}, "_", "'_': not a parameter"),  # a cache-buster
        ({"from": "2026-11-21", "to": "2026-11-01"}, "from", "is after to"),
        ({"from": "2024-01-01", "to": "2026-11-21"}, "from", "at most 400"),
        ({"period": "year"}, "period", "is not one of day, week, month"),
        # Issue 16 #6: near year 1 or 9999 the period arithmetic overflowed (500).
        ({"from": "0001-01-01", "to": "0001-01-02"}, "to", "is out of range (1970-01-01 to 2999-12-31)"),
        ({"from": "0001-01-01"}, "from", "is out of range"),
        ({"to": "0001-01-10", "period": "month"}, "to", "is out of range"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "to", "is out of range"),
        ({"from": "9999-12-31"}, "from", "is out of range"),
        # The last was taken: a report of another range than the first one asked for.
        ([("from", "2026-11-01"), ("from", "2026-11-10")], "from", "given 2 times; give it once"),
        ([("period", "day"), ("to", "2026-11-21"), ("period", "day")], "period", "given 2 times"),
    ],
)
def test_an_unusable_analytics_query_is_a_400_naming_the_parameter(
    client: TestClient, query: dict[str, str] | list[tuple[str, str]], field: str, message: str
) -> None:
    for path in ("/analytics", "/analytics/report"):
        response = client.get(path, params=query)
        assert response.status_code == 400, response.text
        issue = response.json()["issue"][0]
        assert issue["expression"] == [field] and message in issue["diagnostics"]


def test_the_report_page_s_form_asks_with_what_the_route_takes(client: TestClient) -> None:
    """Every field of the page's form (a browser sends each, empty too) is a parameter it takes."""
    page = client.get("/analytics/report")
    names = re.findall(r'<(?:input|select|button|textarea)\b[^>]*\bname="([^"]*)"', page.text)
    assert sorted(names) == ["from", "period", "to"]
    assert client.get("/analytics/report", params=dict.fromkeys(names, "")).status_code == 200


def test_the_report_command_takes_a_day_written_yyyy_mm_dd_only(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CDS_")}, "CDS_DATA_DIR": str(tmp_path)}
    report = subprocess.run([*CLI, "report", "--from", "20261201"], env=env, capture_output=True, text=True, timeout=60)
    assert report.returncode == 2, report.stderr
    assert "from: '20261201' is not a date (YYYY-MM-DD)" in report.stderr and "Traceback" not in report.stderr


def test_a_query_at_the_edges_of_the_range_is_answered(client: TestClient) -> None:
    """The earliest day defaults ``from`` no earlier than itself; the latest is a day like any other."""
    for query in ({"to": "1970-01-05", "period": "month"}, {"from": "2999-12-01", "to": "2999-12-31"}):
        response = client.get("/analytics", params=query)
        assert response.status_code == 200, response.text
    assert client.get("/analytics", params={"to": "1970-01-05"}).json()["from"] == "1970-01-01"


def test_the_report_command_refuses_a_date_out_of_range(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CDS_")}, "CDS_DATA_DIR": str(tmp_path)}
    report = subprocess.run([*CLI, "report", "--to", "0001-01-01"], env=env, capture_output=True, text=True, timeout=60)
    assert report.returncode == 2, report.stderr
    assert "to: 0001-01-01 is out of range" in report.stderr and "Traceback" not in report.stderr


def test_analytics_need_a_client_token_when_authentication_is_on(make_client: Callable[..., TestClient]) -> None:
    client = make_client(auth_mode="required", trust_sandbox=True)
    for path in ("/analytics", "/analytics/report"):
        assert client.get(path).status_code == 401


def test_the_report_page_draws_a_bar_per_rule_and_escapes_what_clients_sent(client: TestClient) -> None:
    card = issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    hostile = overridden(card)
    hostile["overrideReason"] = {"reason": {"code": "<script>alert(1)</script>", "display": "shown nowhere"}}
    send_feedback(client, hostile)
    page = client.get("/analytics/report", params={"period": "day"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count("<svg") == 1 and 'aria-label="Accepted 0, Overridden 1, Ignored 0 of 1 alerts' in page.text
    assert "Counted per alert, not per call" in page.text and "1 alerts: 0 accepted, 1 overridden" in page.text
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert 'name="from"' in page.text and 'name="period"' in page.text


def test_the_report_command_prints_the_table_from_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, knowledge_for: Callable[[Settings], Knowledge | None]
) -> None:
    # The service in process, on this data directory with no other CDS_ settings and the tests'
    # clock; the report asked for that day by date, whatever day the command's own clock says.
    for name in [name for name in os.environ if name.startswith("CDS_")]:
        monkeypatch.delenv(name)
    settings = Settings(data_dir=tmp_path, auth_mode="off")
    app = create_app(settings, knowledge=knowledge_for(settings), clock=Clock(NOON))
    with TestClient(app) as client:
        card = issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
        send_feedback(client, overridden(card, "already-addressed"))
    app.state.runtime.store.engine.dispose()
    # This process's environment (its clock included, e.g. under faketime), without CDS_ settings.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CDS_")}, "CDS_DATA_DIR": str(tmp_path)}
    day = ["--from", TODAY.isoformat(), "--to", TODAY.isoformat()]
    report = subprocess.run(
        [*CLI, "report", *day, "--period", "day"], env=env, capture_output=True, text=True, timeout=60
    )
    assert report.returncode == 0, report.stderr
    row = next(line.split() for line in report.stdout.splitlines() if line.startswith("cyclobenzaprine-duration"))
    assert row == ["cyclobenzaprine-duration", "1", "0", "1", "0", "0%", "100%", "1"]
    assert "Counted per alert, not per call" in report.stdout
    assert "Already addressed or will reassess at follow-up" in report.stdout
    as_json = subprocess.run([*CLI, "report", *day, "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(as_json.stdout)["totals"]["overridden"] == 1


def test_alerts_are_counted_on_the_site_s_day(database_url: str, make_client: Callable[..., TestClient]) -> None:
    """At 21:00 on 20 November in Chicago it is 03:00 UTC on the 21st: the site's day, which the
    rules count and a report's range names, is the 20th. A site at UTC counts the 21st."""
    evening = Clock(datetime(2026, 11, 21, 3, 0, tzinfo=UTC).timestamp())
    chicago = make_client(database_url=database_url, clock=evening, timezone="America/Chicago")
    card = issued(chicago, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    send_feedback(chicago, overridden(card, "already-addressed"))

    def counted(client: TestClient, day: str) -> list[tuple[str, int, list[str]]]:
        body = client.get("/analytics", params={"from": day, "to": day, "period": "day"}).json()
        return [
            (r["periods"][0]["start"], r["issued"], [reason["code"] for reason in r["override_reasons"]])
            for r in body["rules"]
        ]

    assert counted(chicago, "2026-11-20") == [("2026-11-20", 1, ["already-addressed"])]
    assert counted(chicago, "2026-11-21") == []
    chicago.__exit__(None, None, None)
    utc = make_client(database_url=database_url, clock=evening, timezone="UTC")
    assert counted(utc, "2026-11-21") == [("2026-11-21", 1, ["already-addressed"])]
    assert counted(utc, "2026-11-20") == []


def test_a_site_s_days_follow_its_daylight_saving_across_a_report(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """CET's clocks go forward at 01:00 UTC on 29 March 2026: 22:30 UTC is 23:30 the same day
    before it (+1) and 00:30 the next day after it (+2). Read at a fixed +1 (PostgreSQL's
    abbreviation "CET"), the second card would count on the 29th."""
    clock = Clock(datetime(2026, 3, 28, 22, 30, tzinfo=UTC).timestamp())
    client = make_client(database_url=database_url, clock=clock, timezone="CET")
    name = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
    issued(client, name)
    clock.set(days=1)  # 22:30 UTC on the 29th, after the change
    issued(client, name)
    body = client.get("/analytics", params={"from": "2026-03-28", "to": "2026-03-31", "period": "day"}).json()
    [duration] = body["rules"]
    assert [(p["start"], p["issued"]) for p in duration["periods"]] == [("2026-03-28", 1), ("2026-03-30", 1)]


def _changes(zone: ZoneInfo, year: int) -> list[datetime]:
    """When ``zone``'s offset from UTC changes in ``year`` (to the hour), by zoneinfo."""
    hours = [datetime(year, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(366 * 24)]
    return [b for a, b in itertools.pairwise(hours) if a.astimezone(zone).utcoffset() != b.astimezone(zone).utcoffset()]


@pytest.mark.parametrize("zone", ["Africa/Casablanca", "Australia/Lord_Howe", "America/St_Johns", "Asia/Kathmandu"])
def test_each_card_counts_on_the_day_it_was_where_the_site_is(
    make_client: Callable[..., TestClient], database_url: str, zone: str
) -> None:
    """A second either side of the site's midnights next to each change of its offset in 2026
    (Casablanca's two around Ramadan, Lord Howe's half hour, St John's and Kathmandu's odd
    offsets): each card on the day zoneinfo puts it, over one report spanning them all."""
    site = ZoneInfo(zone)
    midnights = {
        datetime.combine(change.astimezone(site).date() + timedelta(days=days), time.min, site)
        for change in _changes(site, 2026)
        for days in (0, 1)
    } or {datetime(2026, 6, 1, tzinfo=site)}  # Kathmandu: no change, one midnight
    instants = sorted(m.astimezone(UTC) + timedelta(seconds=s) for m in midnights for s in (-1, 1))
    clock = Clock(instants[0].timestamp())
    client = make_client(database_url=database_url, clock=clock, timezone=zone)
    for instant in instants:
        clock.now = instant.timestamp()
        issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    expected = Counter(instant.astimezone(site).date().isoformat() for instant in instants)
    first, last = min(expected), max(expected)
    body = client.get("/analytics", params={"from": first, "to": last, "period": "day"}).json()
    [duration] = body["rules"]
    assert {p["start"]: p["cards_shown"] for p in duration["periods"]} == dict(expected)


@pytest.mark.parametrize(
    ("zone", "instant", "site_day"),
    [
        ("America/Santiago", "2026-04-05T02:59:59", "2026-04-04"),  # 23:59:59 at -03, before the change
        ("America/Santiago", "2026-04-05T03:00:00", "2026-04-04"),  # the change: 23:00:00 again, at -04
        ("America/Nuuk", "2026-03-29T00:59:59", "2026-03-28"),  # 22:59:59 at -02, before the change
        ("America/Nuuk", "2026-03-29T01:00:00", "2026-03-29"),  # the change: 00:00:00, at -01 (no 23:00 that day)
    ],
)
def test_a_card_at_the_instant_a_site_s_clocks_change_across_midnight_counts_on_its_day(
    make_client: Callable[..., TestClient], database_url: str, zone: str, instant: str, site_day: str
) -> None:
    """Santiago's clocks go back from midnight and Nuuk's go forward to it, so the second of a
    change decides the day: the offset before a change holds until its very instant, the new one
    from it. Counted a second late, or for a while after, the card fell on another day."""
    clock = Clock(datetime.fromisoformat(instant).replace(tzinfo=UTC).timestamp())
    client = make_client(database_url=database_url, clock=clock, timezone=zone)
    issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    body = client.get("/analytics", params={"from": "2026-03-01", "to": "2026-04-30", "period": "day"}).json()
    [duration] = body["rules"]
    assert [(p["start"], p["cards_shown"]) for p in duration["periods"]] == [(site_day, 1)]


def test_a_card_in_the_last_instant_of_a_site_s_day_counts_on_that_day(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """23:59:59.9999 in Tokyo is still the 21st there: SQLite, shifting the time by the site's
    offset with its fraction, rounded it to the millisecond, the next day's midnight."""
    clock = Clock(datetime(2026, 11, 21, 14, 59, 59, 999900, tzinfo=UTC).timestamp())
    client = make_client(database_url=database_url, clock=clock, timezone="Asia/Tokyo")
    issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    body = client.get("/analytics", params={"from": "2026-11-20", "to": "2026-11-23", "period": "day"}).json()
    [duration] = body["rules"]
    assert [(p["start"], p["cards_shown"]) for p in duration["periods"]] == [("2026-11-21", 1)]
