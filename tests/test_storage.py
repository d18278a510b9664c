"""The database across versions and time, on the embedded SQLite file and a real PostgreSQL: a new
database at the latest schema, older ones migrated with their rows and read by today's rules, and
nothing kept past the retention period."""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
import re
import stat
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from cds_service.storage import keyed
from cds_service.storage.schema import feedback
from cds_service.storage.store import Store
from tests.conftest import SELECT, SIGN, Clock, cards_for, fixture, for_patient, rule_ids
from tests.feedback_calls import DAY_1, DAY_2, by_rule, database_rows, first_release_tables, issued, send_feedback


def test_a_new_database_is_created_at_the_latest_schema_version(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    ready = make_client(database_url=database_url).get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok, schema version 15"


def _first_release_database(database_url: str, *, patient_key: str, order_key: str, outcome: str) -> None:
    """A database as the first release left it (before versioning), holding one
    cyclobenzaprine-duration card issued on DAY_1 and its feedback."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        first_release_tables(connection)
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
    assert client.get("/readyz").json()["checks"]["database"] == "ok, schema version 15"
    # Version 14 gives feedback's once-only key its client (on SQLite, the table made again): kept.
    assert database_rows(database_url, "SELECT id, card_uuid, outcome, rule_id, issuer FROM feedback") == [
        (1, "old-card", "overridden", "cyclobenzaprine-duration", None)
    ]
    # Version 5 reads each old card's draft off its order key: the draft's two cards (the drug
    # changed in between) are one alert, overridden.
    duration = by_rule(client.get("/analytics", params={"from": "2026-11-20"}).json())["cyclobenzaprine-duration"]
    assert (duration["issued"], duration["overridden"], duration["cards_shown"]) == (1, 1, 2)
    # New cards are stored with the new columns beside the old ones.
    assert "cyclobenzaprine-duration" in issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")


def test_feedback_on_a_card_stored_before_version_8_is_taken_as_sent(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """Version 8 keeps the suggestions each card offered, to refuse feedback accepting another;
    an older card has no list to check against, so what its feedback accepts is stored."""
    _first_release_database(
        database_url, patient_key="k", order_key="MedicationRequest/old|828348", outcome="overridden"
    )
    client = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()))
    item = {
        "card": "old-card",
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "a suggestion of the first release"}],
        "outcomeTimestamp": "2026-11-20T10:30:00Z",
    }
    answer = client.post(f"{SELECT}/feedback", json={"feedback": [item]})
    assert answer.json() == {"received": 1, "stored": 1}
    new = issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    answer = client.post(f"{SELECT}/feedback", json={"feedback": [{**item, "card": new["uuid"]}]})
    assert [r["index"] for r in answer.json()["refused"]] == [0]  # a card stored today is checked


def test_a_resend_of_what_an_older_release_stored_unchecked_is_a_resend(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """During a rolling upgrade a process of the release before stores feedback unchecked; sent
    again to this one, it is the same item (stored once), not refused as accepting nothing the
    card offered. A card's suggestions changed by hand into something unreadable check nothing."""
    client = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()))
    card = issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "a label, not a uuid"}],
        "outcomeTimestamp": "2026-11-21T09:30:00Z",
    }
    engine = create_engine(database_url)
    with engine.begin() as connection:  # as the release before stores it: through the same table
        connection.execute(
            feedback.insert(),
            {
                "card_uuid": card["uuid"],
                "service_id": SELECT,
                "rule_id": "cyclobenzaprine-duration",
                "outcome": "accepted",
                "accepted_suggestions": '["a label, not a uuid"]',
                "outcome_timestamp": DAY_2 - timedelta(minutes=30),  # the item's outcomeTimestamp
                "received_at": DAY_2,
            },
        )
    assert client.post(f"{SELECT}/feedback", json={"feedback": [item]}).json() == {"received": 1, "stored": 0}
    later = {**item, "outcomeTimestamp": "2026-11-21T09:40:00Z"}
    assert [r["index"] for r in client.post(f"{SELECT}/feedback", json={"feedback": [later]}).json()["refused"]] == [0]
    for minute, unreadable in ((50, "not JSON"), (55, '"abc"')):  # the second JSON, but no list
        with engine.begin() as connection:
            connection.execute(text("UPDATE issued_cards SET suggestions = :value"), {"value": unreadable})
        again = {**item, "outcomeTimestamp": f"2026-11-21T09:{minute}:00Z"}
        assert client.post(f"{SELECT}/feedback", json={"feedback": [again]}).json() == {"received": 1, "stored": 1}
    engine.dispose()


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
    assert client.get("/readyz").json()["checks"]["database"] == "ok, schema version 15"
    assert "cyclobenzaprine-duration" in issued(client, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    body = client.get("/analytics", params={"from": "2026-11-20", "to": "2026-11-20"}).json()
    # The old card and the new one: the same patient's draft on the same day, one accepted alert.
    assert {k: body["totals"][k] for k in ("issued", "accepted", "cards_shown")} == {
        "issued": 1,
        "accepted": 1,
        "cards_shown": 2,
    }


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


def test_a_snooze_stored_before_version_3_still_silences_its_rule_for_the_patient(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """Version 3 keys feedback by patient, and a hook call reads its patient's feedback alone:
    the migration fills the key in from each item's card, so a "Don't show again" given on a
    version 2 database keeps the rule quiet for that patient through its snooze period."""
    patient = hmac.new(b"test-patient-key", b"harness-pt-1", hashlib.sha256).hexdigest()
    _first_release_database(
        database_url, patient_key=patient, order_key="MedicationRequest/request-123|828348", outcome="overridden"
    )
    engine = create_engine(database_url)
    with engine.begin() as connection:  # as version 2 left it: a warning card, snoozed by its reason
        connection.execute(text("ALTER TABLE issued_cards ADD COLUMN indicator VARCHAR(20)"))
        connection.execute(text("UPDATE issued_cards SET indicator = 'warning'"))
        connection.execute(
            text("UPDATE feedback SET override_system = 'urn:back-spasm-cds:override-reason', override_code = :code"),
            {"code": "dont-show-again"},
        )
        connection.execute(
            text(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description VARCHAR(200) NOT NULL, "
                "applied_at TIMESTAMP WITH TIME ZONE NOT NULL)"
            )
        )
        for version in (1, 2):
            connection.execute(
                text("INSERT INTO schema_version VALUES (:version, 'as released', :at)"),
                {"version": version, "at": DAY_1},
            )
    engine.dispose()
    later = Clock((DAY_1 + timedelta(days=1)).timestamp())
    client = make_client(database_url=database_url, clock=later, patient_id_key=SecretStr("test-patient-key"))
    assert client.get("/readyz").json()["checks"]["database"] == "ok, schema version 15"
    body = client.post(SELECT, json=fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")).json()
    assert "cyclobenzaprine-duration" not in rule_ids(body)
    other = for_patient(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"), "another-patient")
    assert "cyclobenzaprine-duration" in rule_ids(client.post(SELECT, json=other).json())  # that patient's alone


def test_what_is_exactly_the_retention_period_old_is_kept_and_a_second_later_goes(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """CDS_RETENTION_DAYS says how long cards and feedback are kept: what was stored ten days
    ago to the second is still counted, and one second later the card, its feedback and feedback
    about a card of no record are gone alike (feedback left behind its card would be counted as
    about no known card)."""
    first = make_client(database_url=database_url, clock=Clock(DAY_1.timestamp()))
    card = issued(first, "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["cyclobenzaprine-duration"]
    at = "2026-11-20T10:00:00Z"  # DAY_1, when it is received
    send_feedback(
        first,
        {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": at},
        {"card": "a card of no record", "outcome": "overridden", "outcomeTimestamp": at},
    )
    query = {"from": "2026-11-20", "to": "2026-11-20"}
    assert first.get("/analytics", params=query).json()["totals"]["issued"] == 1  # the record written

    def counted(after: timedelta) -> tuple[int, int, int]:
        later = Clock((DAY_1 + after).timestamp())
        client = make_client(database_url=database_url, clock=later, retention_days=10, snooze_days=10)
        body = client.get("/analytics", params=query).json()
        return body["totals"]["issued"], body["totals"]["overridden"], body["unmatched_feedback"]

    assert counted(timedelta(days=10)) == (1, 1, 1)
    assert counted(timedelta(days=10, seconds=1)) == (0, 0, 0)


def test_the_data_directory_the_service_makes_is_its_users_alone(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    """It holds feedback's comments (the SQLite file and its write-ahead log) and the patient-id
    key: whatever the umask lets files be, no other user may list or open them."""
    data = tmp_path / "var" / "cds"
    client = make_client(data_dir=data)
    assert client.get("/readyz").status_code == 200
    assert (data / "cds-service.db").exists()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "patient-id.key").stat().st_mode) == 0o600


def test_a_sqlite_file_named_in_a_directory_not_yet_made_is_made_there_privately(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    """CDS_DATABASE_URL may name a file outside the data directory, in a directory that does not
    exist yet (a new volume's mount point): it is made, as the data directory is, for the
    service's user alone, rather than SQLite's "unable to open database file" stopping the start."""
    database = tmp_path / "volume" / "cds" / "cds.db"
    client = make_client(database_url=f"sqlite:///{database}")
    assert client.get("/readyz").json()["checks"]["database"] == "ok, schema version 15"
    assert database.exists()
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700


CANARY = "pt-canary-7731"  # an EHR's patient id, which its order ids are built from


def _canary_order(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` for the patient CANARY, its draft named after the patient as some EHRs name it."""
    request = for_patient(request, CANARY)
    [entry] = request["context"]["draftOrders"]["entry"]
    entry["resource"]["id"] = f"{CANARY}-rx-1"
    if "selections" in request["context"]:
        request["context"]["selections"] = [f"MedicationRequest/{CANARY}-rx-1"]
    return request


def _swapped(request: dict[str, Any], swap: dict[str, Any]) -> dict[str, Any]:
    """The draft as the swap leaves it (the sandbox applies its medication only)."""
    low_dose = copy.deepcopy(request)
    low_dose["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = swap["actions"][0][
        "resource"
    ]["medicationCodeableConcept"]
    return low_dose


def _accepting(card: dict[str, Any], swap: dict[str, Any]) -> dict[str, Any]:
    item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
    return {**item, "acceptedSuggestions": [{"id": swap["uuid"]}]}


def _keyed_by_now(database_url: str) -> None:
    """Wait for the new process's first keying (a task of its own, not before the first request)."""
    deadline = time.monotonic() + 60
    while CANARY in _everything_stored(database_url):
        assert time.monotonic() < deadline, "the older release's records were not keyed within 60 s"
        time.sleep(0.05)


def _everything_stored(database_url: str) -> str:
    tables = ("issued_cards", "feedback", "seen_tokens", "schema_version")
    return repr([database_rows(database_url, f"SELECT * FROM {table}") for table in tables])


def test_no_patient_id_is_stored_even_in_a_draft_reference_built_from_it(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """The draft's reference, its order key and the key its swap leaves are kept as keyed hashes,
    as the patient id is: the swap still keeps its rule quiet for that draft, and the draft's
    cards are still one alert."""
    client = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()))
    request = _canary_order(fixture("cyclobenzaprine-older-adult/fires-age-65-10mg.json"))
    [card] = cards_for(client.post(SELECT, json=request).json(), "cyclobenzaprine-older-adult")
    swap = next(s for s in card["suggestions"] if s["actions"][0]["type"] == "update")
    send_feedback(client, _accepting(card, swap))
    assert "cyclobenzaprine-older-adult" not in rule_ids(client.post(SELECT, json=_swapped(request, swap)).json())
    client.post(SELECT, json=request)  # the 10 mg draft again: its card again, the same alert
    older = by_rule(client.get("/analytics", params={"from": "2026-11-21"}).json())["cyclobenzaprine-older-adult"]
    assert (older["issued"], older["accepted"], older["cards_shown"]) == (1, 1, 2)
    assert CANARY not in _everything_stored(database_url)


def test_cards_an_older_release_stored_as_sent_are_read_keyed_then_keyed(
    make_client: Callable[..., TestClient], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cards stored as version 8 stores them (the reference, "reference|drug" keys, the draft
    hash as computed; ``keyed`` null), before the upgrade or by its processes still running
    beside this release: read as if keyed until the sweep keys them (the swap accepted on them
    keeps its rule quiet, order-sign does not repeat what order-select showed), then keyed, a
    page at a time, with the draft's cards before and after one alert."""
    key = SecretStr("test-patient-key")
    monkeypatch.setattr(Store, "pseudonym", lambda _, value: value)  # as version 8 stored them
    monkeypatch.setattr(
        Store, "patient_key", lambda _, value: hmac.new(b"test-patient-key", value.encode(), "sha256").hexdigest()
    )
    monkeypatch.setattr(Store, "key_old_records", lambda _: 0)  # the overlap, before the sweep
    older = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()), patient_id_key=key)
    request = _canary_order(fixture("cyclobenzaprine-older-adult/fires-age-65-10mg.json"))
    cards = older.post(SELECT, json=request).json()
    assert rule_ids(cards) == ["cyclobenzaprine-older-adult", "cyclobenzaprine-duration"]
    [card] = cards_for(cards, "cyclobenzaprine-older-adult")
    swap = next(s for s in card["suggestions"] if s["actions"][0]["type"] == "update")
    send_feedback(older, _accepting(card, swap))
    older.get("/readyz")  # every record written
    with create_engine(database_url).begin() as connection:
        connection.execute(text("UPDATE issued_cards SET keyed = NULL"))  # version 8 has no such column
    monkeypatch.undo()
    monkeypatch.setattr(Store, "key_old_records", lambda _: 0)
    assert CANARY in _everything_stored(database_url)

    beside = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()), patient_id_key=key)
    assert "cyclobenzaprine-older-adult" not in rule_ids(beside.post(SELECT, json=_swapped(request, swap)).json())
    signed = {**copy.deepcopy(request), "hook": "order-sign"}
    del signed["context"]["selections"]
    # The duration card was shown at order-select for this draft; the older-adult card, accepted, comes back.
    assert rule_ids(beside.post(SIGN, json=signed).json()) == ["cyclobenzaprine-older-adult"]
    beside.get("/analytics")  # its card records written: written behind, under load they were not yet

    monkeypatch.undo()
    monkeypatch.setattr(keyed, "PAGE", 1)  # a page a record
    upgraded = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()), patient_id_key=key)
    _keyed_by_now(database_url)
    assert "cyclobenzaprine-older-adult" not in rule_ids(upgraded.post(SELECT, json=_swapped(request, swap)).json())
    assert rule_ids(upgraded.post(SIGN, json=signed).json()) == ["cyclobenzaprine-older-adult"]
    upgraded.post(SELECT, json=request)
    older_adult = by_rule(upgraded.get("/analytics", params={"from": "2026-11-21"}).json())[
        "cyclobenzaprine-older-adult"
    ]
    assert (older_adult["issued"], older_adult["accepted"], older_adult["cards_shown"]) == (1, 1, 4)


def _unkeyed_card(database_url: str, uuid: str, keys_after: str | None = None) -> None:
    """A card record as an older release writes it, issued on DAY_2."""
    with create_engine(database_url).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO issued_cards (uuid, rule_id, service_id, hook_instance, patient_key, order_key, "
                "issued_at, indicator, draft, keys_after) VALUES (:uuid, 'cyclobenzaprine-duration', "
                "'back-spasm-order-select', 'h', 'k', :key, :at, 'warning', :draft, :after)"
            ),
            {
                "uuid": uuid,
                "key": f"MedicationRequest/{CANARY}|828348",
                "at": DAY_2,
                "draft": f"MedicationRequest/{CANARY}",
            }
            | {"after": keys_after},
        )


def test_each_older_record_is_counted_once_as_it_is_keyed(
    make_client: Callable[..., TestClient],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The log says how many records the keying changed, page after page, on either database: the
    statement's own count (a record another process keyed meanwhile is not counted twice)."""
    caplog.set_level(logging.INFO, logger="cds_service.storage.store")
    monkeypatch.setattr(keyed, "PAGE", 2)  # two pages, the second short
    client = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()))
    client.get("/healthz")
    for uuid in ("old-1", "old-2", "old-3"):
        _unkeyed_card(database_url, uuid)
    assert client.get("/analytics").status_code == 200
    _keyed_by_now(database_url)
    said = re.findall(r"(\d+) card records of an older release now keep", caplog.text)
    assert sum(map(int, said)) == 3
    assert database_rows(database_url, "SELECT count(*) FROM issued_cards WHERE keyed = 1") == [(3,)]


def test_analytics_do_not_wait_on_a_record_another_transaction_holds(
    make_client: Callable[..., TestClient], postgresql_url: str
) -> None:
    """Analytics key what an older release stored first; a record locked elsewhere (a stranded
    transaction) made them wait for as long as it was held, each holding a pooled connection.
    Now the keying gives up after a second: the figures come, the record keyed later, whatever
    the statement timeout (here ten minutes: the lock's own wait, not the statement's, lets go)."""
    client = make_client(
        database_url=postgresql_url, clock=Clock(DAY_2.timestamp()), database_statement_timeout_seconds=600
    )
    _unkeyed_card(postgresql_url, "held-card")
    holder = create_engine(postgresql_url).connect()
    holder.execute(text("SELECT uuid FROM issued_cards WHERE uuid = 'held-card' FOR UPDATE"))
    answers: list[int] = []
    asking = threading.Thread(target=lambda: answers.append(client.get("/analytics").status_code))
    asking.start()
    asking.join(60)
    holder.rollback()
    holder.close()
    assert answers == [200]
    assert client.get("/analytics").status_code == 200 and CANARY not in _everything_stored(postgresql_url)


def test_a_record_whose_swaps_are_nested_past_reading_is_keyed_without_them(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """keys_after changed by hand into JSON nested deeper than the parser goes: a RecursionError
    that answered analytics 500 and ended the hourly sweep's task."""
    client = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()))
    _unkeyed_card(database_url, "nested-card", "[" * 5000 + "]" * 5000)
    assert client.get("/analytics").status_code == 200
    assert database_rows(database_url, "SELECT keyed, keys_after FROM issued_cards") == [(1, None)]
    assert CANARY not in _everything_stored(database_url)


def test_a_record_held_elsewhere_does_not_hold_up_the_start(
    make_client: Callable[..., TestClient], postgresql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The retention sweep runs before the first request; a record past retention locked by a
    transaction left open elsewhere held the start for as long (no listener, no /healthz). Now
    the sweep gives up after 2 s, says so, and the next one goes on: its lock's own wait, not the
    statement timeout (here ten minutes), lets go."""
    make_client(database_url=postgresql_url, clock=Clock(DAY_2.timestamp())).get("/healthz")
    _unkeyed_card(postgresql_url, "old-card")
    holder = create_engine(postgresql_url).connect()
    holder.execute(text("SELECT uuid FROM issued_cards WHERE uuid = 'old-card' FOR UPDATE"))
    later = Clock((DAY_2 + timedelta(days=500)).timestamp())
    started: list[int] = []
    starting = threading.Thread(
        target=lambda: started.append(
            make_client(database_url=postgresql_url, clock=later, database_statement_timeout_seconds=600)
            .get("/healthz")
            .status_code
        )
    )
    starting.start()
    starting.join(60)
    holder.rollback()
    holder.close()
    assert started == [200]
    assert "retention sweep failed: OperationalError" in caplog.text
