"""Storage and analytics on both databases: the embedded SQLite file and a real PostgreSQL.

What an informaticist reads in ``/analytics`` must be exactly what clinicians did, whichever
database holds it, however many processes wrote it, and across schema upgrades.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from cds_service.app import create_app
from cds_service.pipeline.knowledge import Knowledge
from cds_service.settings import Settings
from tests.conftest import NOON, SELECT, Clock, fixture, settings_in
from tests.serving import CLI, serve, serve_in_thread

FEEDBACK = f"{SELECT}/feedback"
DAY_1 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DAY_2 = DAY_1 + timedelta(days=1)
SESSION = Path(__file__).resolve().parent.parent / "scripts" / "feedback_session.py"


def _cards(client: TestClient, name: str) -> dict[str, dict[str, Any]]:
    response = client.post(SELECT, json=fixture(name))
    assert response.status_code == 200, response.text
    return {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}


def _send(client: TestClient, *items: dict[str, Any]) -> None:
    response = client.post(FEEDBACK, json={"feedback": list(items)})
    assert response.status_code == 200, response.text


def _overridden(card: dict[str, Any], code: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T11:00:00Z"}
    if code:
        item["overrideReason"] = {"reason": {"system": "urn:back-spasm-cds:override-reason", "code": code}}
    return item


def _by_rule(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["rule_id"]: rule for rule in body["rules"]}


def test_a_new_database_is_created_at_the_latest_schema_version(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    ready = make_client(database_url=database_url).get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok, schema version 6"


def _first_release_database(database_url: str, *, patient_key: str, order_key: str, outcome: str) -> None:
    """A database as the first release left it (before versioning), holding one
    cyclobenzaprine-duration card issued on DAY_1 and its feedback."""
    engine = create_engine(database_url)
    serial = "SERIAL" if engine.dialect.name == "postgresql" else "INTEGER"
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE issued_cards (uuid VARCHAR(64) PRIMARY KEY, rule_id VARCHAR(100) NOT NULL, "
                "service_id VARCHAR(100) NOT NULL, hook_instance VARCHAR(200) NOT NULL, "
                "patient_key VARCHAR(64) NOT NULL, order_key VARCHAR(300) NOT NULL, "
                "issued_at TIMESTAMP WITH TIME ZONE NOT NULL)"
            )
        )
        connection.execute(
            text(
                f"CREATE TABLE feedback (id {serial} PRIMARY KEY, card_uuid VARCHAR(100) NOT NULL, "
                "service_id VARCHAR(100) NOT NULL, rule_id VARCHAR(100), outcome VARCHAR(20) NOT NULL, "
                "accepted_suggestions TEXT, override_system VARCHAR(500), override_code VARCHAR(200), "
                "override_display VARCHAR(500), user_comment TEXT, "
                "outcome_timestamp TIMESTAMP WITH TIME ZONE NOT NULL, received_at TIMESTAMP WITH TIME ZONE NOT NULL, "
                "CONSTRAINT feedback_once UNIQUE (card_uuid, outcome, outcome_timestamp))"
            )
        )
        connection.execute(
            text(
                "CREATE TABLE seen_tokens (issuer VARCHAR(500), jti VARCHAR(256), "
                "expires_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (issuer, jti))"
            )
        )
        connection.execute(
            text(
                "INSERT INTO issued_cards VALUES ('old-card', 'cyclobenzaprine-duration', 'back-spasm-order-select', "
                "'old-hook', :patient, :order, :at)"
            ),
            {"patient": patient_key, "order": order_key, "at": DAY_1},
        )
        connection.execute(
            text(
                "INSERT INTO feedback (card_uuid, service_id, rule_id, outcome, outcome_timestamp, received_at) "
                "VALUES ('old-card', 'back-spasm-order-select', 'cyclobenzaprine-duration', :outcome, :at, :at)"
            ),
            {"outcome": outcome, "at": DAY_1},
        )
    engine.dispose()


def test_a_database_from_before_versioning_is_migrated_and_keeps_its_rows(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    _first_release_database(
        database_url, patient_key="k", order_key="MedicationRequest/old|828348", outcome="overridden"
    )
    _old_card(database_url, "old-card-2", patient_key="k", order_key="MedicationRequest/old|828320")

    client = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()))
    assert client.get("/readyz").json()["checks"]["database"] == "ok, schema version 6"
    # Version 5 reads each old card's draft off its order key: the draft's two cards (the drug
    # changed in between) are one alert, overridden.
    duration = _by_rule(client.get("/analytics", params={"from": "2026-11-20"}).json())["cyclobenzaprine-duration"]
    assert (duration["issued"], duration["overridden"], duration["cards_shown"]) == (1, 1, 2)
    # New cards are stored with the new columns beside the old ones.
    assert "cyclobenzaprine-duration" in _cards(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")


def _old_card(database_url: str, uuid: str, *, patient_key: str, order_key: str) -> None:
    """One more card of DAY_1 in a first-release database."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO issued_cards VALUES (:uuid, 'cyclobenzaprine-duration', 'back-spasm-order-select', "
                "'old-hook-2', :patient, :order, :at)"
            ),
            {"uuid": uuid, "patient": patient_key, "order": order_key, "at": DAY_1 + timedelta(minutes=1)},
        )
    engine.dispose()


def test_feedback_stored_before_version_3_is_read_by_todays_rules(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """Version 3 keys feedback by patient; the migration fills the key in for what was stored.
    An old acceptance no longer silences the card (cards return while they apply); the old
    card's alert still counts as accepted."""
    patient = hmac.new(b"test-patient-key", b"harness-pt-1", hashlib.sha256).hexdigest()
    order = "MedicationRequest/request-123|828348"  # the fixture's draft and drug
    _first_release_database(database_url, patient_key=patient, order_key=order, outcome="accepted")

    later = Clock((DAY_1 + timedelta(minutes=10)).timestamp())
    client = make_client(database_url=database_url, clock=later, patient_id_key=SecretStr("test-patient-key"))
    assert client.get("/readyz").json()["checks"]["database"] == "ok, schema version 6"
    assert "cyclobenzaprine-duration" in _cards(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    body = client.get("/analytics", params={"from": "2026-11-20", "to": "2026-11-20"}).json()
    # The old card and the new one: the same patient's draft on the same day, one accepted alert.
    assert {k: body["totals"][k] for k in ("issued", "accepted", "cards_shown")} == {
        "issued": 1,
        "accepted": 1,
        "cards_shown": 2,
    }


def test_a_draft_refired_or_edited_five_times_is_one_alert(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """The issue's "done when": the sandbox re-fires order-select on every edit. Five calls for one
    draft (two re-fires as sent, three edits of its duration), then order-sign after one more edit:
    one duration alert, overridden, with six cards shown; the same draft the next day is a new alert."""
    clock = Clock(DAY_1.timestamp())
    client = make_client(database_url=database_url, clock=clock)
    name = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
    shown = [_cards(client, name)["cyclobenzaprine-duration"] for _ in range(2)]
    for days in (28, 35, 60):
        edit = fixture(name)
        edit["context"]["draftOrders"]["entry"][0]["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] = (
            days
        )
        response = client.post(SELECT, json=edit)
        assert response.status_code == 200, response.text
        [card] = response.json()["cards"]
        shown.append(card)
    _send(client, _overridden(shown[1], "already-addressed"), _overridden(shown[4], "already-addressed"))
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
    _cards(client, name)
    week = client.get("/analytics", params={"from": "2026-11-20", "to": "2026-11-21"}).json()
    assert (week["totals"]["issued"], week["totals"]["ignored"], week["totals"]["cards_shown"]) == (2, 1, 7)


def test_analytics_count_each_alert_by_what_became_of_it(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    clock = Clock(DAY_1.timestamp())
    client = make_client(database_url=database_url, clock=clock)
    first = _cards(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    several = _cards(client, "multiple-rules/av-block-resolved-sertraline-70.json")
    clock.set(days=1)
    _cards(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    older, serotonergic = several["cyclobenzaprine-older-adult"], several["cyclobenzaprine-serotonergic"]
    accepted = {
        "card": first["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": first["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-11-21T11:00:00Z",
    }
    _send(client, accepted, _overridden(older, "benefit-outweighs-risk"), _overridden(serotonergic))
    _send(client, _overridden(older, "benefit-outweighs-risk"))  # resent: the same item

    body = client.get("/analytics", params={"from": "2026-11-20", "to": "2026-11-21", "period": "day"}).json()
    assert body["counts"].startswith("alerts: one rule for one patient's draft order (same draft id) on one UTC day")
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
    rules = _by_rule(body)
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
    assert [p["start"] for p in _by_rule(weekly)["cyclobenzaprine-duration"]["periods"]] == ["2026-11-16"]
    second_day = client.get("/analytics", params={"from": "2026-11-21", "to": "2026-11-21"}).json()
    assert {r["rule_id"]: r["issued"] for r in second_day["rules"]} == {"cyclobenzaprine-duration": 1}


def test_cards_and_feedback_older_than_the_retention_period_are_deleted(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    first = make_client(database_url=database_url, clock=Clock(DAY_1.timestamp()))
    first.post(SELECT, json=fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"))
    query = {"from": "2026-11-20", "to": "2026-11-20"}
    # The card record is written behind the answer; a reader of the same app waits for it. Another
    # app (a restart) sees it only once it is written: under a loaded suite, not always by then.
    assert first.get("/analytics", params=query).json()["totals"]["issued"] == 1
    kept = make_client(
        database_url=database_url,
        clock=Clock((DAY_1 + timedelta(days=9)).timestamp()),
        retention_days=10,
        snooze_days=10,
    )
    assert kept.get("/analytics", params=query).json()["totals"]["issued"] == 1
    swept = make_client(
        database_url=database_url,
        clock=Clock((DAY_1 + timedelta(days=11)).timestamp()),
        retention_days=10,
        snooze_days=10,
    )
    assert swept.get("/analytics", params=query).json()["totals"]["issued"] == 0


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"from": "2026-02-30"}, "from", "is not a date"),
        ({"to": "yesterday"}, "to", "is not a date"),
        ({"from": "2026-11-21", "to": "2026-11-01"}, "from", "is after to"),
        ({"from": "2024-01-01", "to": "2026-11-21"}, "from", "at most 400"),
        ({"period": "year"}, "period", "is not one of day, week, month"),
        # Issue 16 #6: near year 1 or 9999 the period arithmetic overflowed (500).
        ({"from": "0001-01-01", "to": "0001-01-02"}, "to", "is out of range (1970-01-01 to 2999-12-31)"),
        ({"from": "0001-01-01"}, "from", "is out of range"),
        ({"to": "0001-01-10", "period": "month"}, "to", "is out of range"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "to", "is out of range"),
        ({"from": "9999-12-31"}, "from", "is out of range"),
    ],
)
def test_an_unusable_analytics_query_is_a_400_naming_the_parameter(
    client: TestClient, query: dict[str, str], field: str, message: str
) -> None:
    for path in ("/analytics", "/analytics/report"):
        response = client.get(path, params=query)
        assert response.status_code == 400, response.text
        issue = response.json()["issue"][0]
        assert issue["expression"] == [field] and message in issue["diagnostics"]


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
    card = _cards(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    hostile = _overridden(card)
    hostile["overrideReason"] = {"reason": {"code": "x", "display": "<script>alert(1)</script>"}}
    _send(client, hostile)
    page = client.get("/analytics/report", params={"period": "day"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count("<svg") == 1 and 'aria-label="Accepted 0, Overridden 1, Ignored 0 of 1 alerts' in page.text
    assert "Counted per alert, not per call" in page.text and "1 alerts: 0 accepted, 1 overridden" in page.text
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert 'name="from"' in page.text and 'name="period"' in page.text


def test_the_report_command_prints_the_table_from_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, knowledge_for: Callable[[Settings], Knowledge | None]
) -> None:
    # The service in process, on this data directory with no other CDS_ settings, and on the
    # wall clock that the report command reads "today" from.
    for name in [name for name in os.environ if name.startswith("CDS_")]:
        monkeypatch.delenv(name)
    settings = Settings(data_dir=tmp_path, auth_mode="off")
    app = create_app(settings, knowledge=knowledge_for(settings), clock=Clock(time.time()))
    with TestClient(app) as client:
        card = _cards(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
        _send(client, _overridden(card, "already-addressed"))
    app.state.runtime.store.engine.dispose()
    # This process's environment (its clock included, e.g. under faketime), without CDS_ settings.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CDS_")}, "CDS_DATA_DIR": str(tmp_path)}
    report = subprocess.run([*CLI, "report", "--period", "day"], env=env, capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    row = next(line.split() for line in report.stdout.splitlines() if line.startswith("cyclobenzaprine-duration"))
    assert row == ["cyclobenzaprine-duration", "1", "0", "1", "0", "0%", "100%", "1"]
    assert "Counted per alert, not per call" in report.stdout
    assert "Already addressed or will reassess at follow-up" in report.stdout
    as_json = subprocess.run([*CLI, "report", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(as_json.stdout)["totals"]["overridden"] == 1


@contextmanager
def _service(
    tmp_path: Path, workers: int, database_url: str, knowledge_for: Callable[[Settings], Knowledge | None]
) -> Iterator[str]:
    """The service on ``database_url``, authentication off; yields its base URL. Several workers
    are ``cds-service serve --workers`` processes; one is the app in a thread of this process."""
    if workers > 1:
        server, port = serve(
            tmp_path,
            "--workers",
            str(workers),
            CDS_AUTH_MODE="off",
            CDS_DATABASE_URL=database_url,
            CDS_LOG_LEVEL="WARNING",
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)
        return
    settings = settings_in(tmp_path).model_copy(update={"database_url": database_url})
    app = create_app(settings, knowledge=knowledge_for(settings), clock=Clock(NOON))
    try:
        with serve_in_thread(app) as base:
            yield base
    finally:
        app.state.runtime.store.engine.dispose()


@pytest.mark.parametrize(("backend", "workers"), [("postgresql", 4), ("sqlite", 1)])
def test_a_session_from_several_processes_is_counted_exactly(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    knowledge_for: Callable[[Settings], Knowledge | None],
    backend: str,
    workers: int,
) -> None:
    """Hook calls and feedback (some resent) from 4 client processes, answered by ``workers``
    service processes sharing one database: nothing lost, nothing counted twice."""
    url = request.getfixturevalue("postgresql_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/cds.db"
    with _service(tmp_path, workers, url, knowledge_for) as base:
        assert requests.get(f"{base}/readyz", timeout=10).status_code == 200
        run = subprocess.run(
            [sys.executable, str(SESSION), "--url", base, "--calls", "150", "--feedback", "60"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["match"] and result["feedback_sent"] == 66
    reported = result["reported"]
    assert len(reported) >= 10
    assert sum(r["accepted"] for r in reported.values()) > 0
    assert sum(r["overridden"] for r in reported.values()) > 0
    assert sum(r["issued"] for r in reported.values()) == result["cards"]


def test_two_instances_starting_together_migrate_one_database_once(
    tmp_path: Path, postgresql_url: str, knowledge_for: Callable[[Settings], Knowledge | None]
) -> None:
    """Containers behind a load balancer start at the same time against one fresh database: two
    instances (each its own engine and connections) started at the same instant from two threads."""
    together = threading.Barrier(2)

    def start(i: int) -> Any:
        settings = settings_in(tmp_path / str(i)).model_copy(update={"database_url": postgresql_url})
        together.wait(timeout=30)
        return create_app(settings, knowledge=knowledge_for(settings), clock=Clock(NOON))

    with ThreadPoolExecutor(2) as pool:
        started = list(pool.map(start, range(2)))
    try:
        with TestClient(started[0]) as first, TestClient(started[1]) as second:
            for client in (first, second):
                ready = client.get("/readyz")
                assert ready.json()["checks"]["database"] == "ok, schema version 6"
    finally:
        for app in started:
            app.state.runtime.store.engine.dispose()
    engine = create_engine(postgresql_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM schema_version")).scalar() == 1
    engine.dispose()


def _workers(supervisor: int) -> list[int]:
    """The worker processes uvicorn spawned (its multiprocessing helpers excluded)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_two_workers_both_answer_hook_calls(tmp_path: Path, postgresql_url: str) -> None:
    """``serve --workers 2``: both processes take hook calls, each answers them right, and the
    cards both issued land in the one database."""
    server, port = serve(
        tmp_path, "--workers", "2", CDS_AUTH_MODE="off", CDS_DATABASE_URL=postgresql_url, CDS_LOG_LEVEL="WARNING"
    )
    base = f"http://127.0.0.1:{port}"
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    try:
        workers = _workers(server.pid)
        assert len(workers) == 2
        before = {pid: _cpu_ticks(pid) for pid in workers}
        with ThreadPoolExecutor(8) as pool:  # a connection per call, so the kernel spreads them
            answers = list(pool.map(lambda _: requests.post(f"{base}{SELECT}", json=request, timeout=30), range(200)))
        busy = {pid: _cpu_ticks(pid) - before[pid] for pid in workers}
        assert all(ticks > 0 for ticks in busy.values()), busy
        assert {a.status_code for a in answers} == {200}
        assert {tuple(c["source"]["topic"]["code"] for c in a.json()["cards"]) for a in answers} == {
            ("cyclobenzaprine-duration",)
        }
        issued = 0
        for _ in range(50):  # each card is written just after its response
            issued = requests.get(f"{base}/analytics", timeout=10).json()["totals"]["cards_shown"]
            if issued == len(answers):
                break
            time.sleep(0.1)
        assert issued == len(answers)
    finally:
        server.terminate()
        server.wait(timeout=30)
