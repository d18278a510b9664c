"""Feedback: validated, stored durably with the rule of the card, and acted on."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.settings import Settings
from tests.conftest import SELECT, fixture, for_patient, rule_ids
from tests.feedback_calls import database_rows

FEEDBACK = f"{SELECT}/feedback"


def _issue_duration_card(client: TestClient, patient_id: str = "harness-pt-1") -> dict[str, Any]:
    request = for_patient(fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"), patient_id)
    [card] = client.post(SELECT, json=request).json()["cards"]
    return card


def _rows(settings: Settings) -> list[sqlite3.Row]:
    connection = sqlite3.connect(settings.data_dir / "cds-service.db")
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute("SELECT * FROM feedback ORDER BY id").fetchall()
    finally:
        connection.close()


NEXT = "2026-11-21T10:20:00.000Z"  # a moment after ``accepted``'s and ``overridden``'s


def accepted(card: dict[str, Any]) -> dict[str, Any]:
    """Exactly what the sandbox sends when a suggestion is taken."""
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-11-21T10:15:00.000Z",
    }


def overridden(card: dict[str, Any], code: str = "already-addressed") -> dict[str, Any]:
    """Exactly what the sandbox sends on Dismiss with a reason: no display, no comment."""
    return {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-21T10:16:00.000Z",
        "overrideReason": {"reason": {"code": code, "system": "urn:back-spasm-cds:override-reason"}},
    }


def test_feedback_is_stored_with_the_rule_of_its_card(client: TestClient, settings: Settings) -> None:
    card = _issue_duration_card(client)
    response = client.post(FEEDBACK, json={"feedback": [accepted(card)]})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "stored": 1}
    [row] = _rows(settings)
    assert (row["card_uuid"], row["rule_id"], row["outcome"]) == (card["uuid"], "cyclobenzaprine-duration", "accepted")
    assert row["accepted_suggestions"] == f'["{card["suggestions"][0]["uuid"]}"]'


def test_override_reason_is_stored(client: TestClient, settings: Settings) -> None:
    card = _issue_duration_card(client)
    assert client.post(FEEDBACK, json={"feedback": [overridden(card)]}).status_code == 200
    [row] = _rows(settings)
    assert (row["outcome"], row["override_code"], row["override_system"]) == (
        "overridden",
        "already-addressed",
        "urn:back-spasm-cds:override-reason",
    )


def test_patient_ids_are_not_stored(client: TestClient, settings: Settings) -> None:
    _issue_duration_card(client, patient_id="patient-with-a-recognisable-id")
    data = (settings.data_dir / "cds-service.db").read_bytes()
    wal = settings.data_dir / "cds-service.db-wal"
    data += wal.read_bytes() if wal.exists() else b""
    assert b"issued_cards" in data
    assert b"patient-with-a-recognisable-id" not in data


def test_resent_feedback_is_stored_once(client: TestClient, settings: Settings) -> None:
    card = _issue_duration_card(client)
    item = overridden(card)
    client.post(FEEDBACK, json={"feedback": [item]})
    assert client.post(FEEDBACK, json={"feedback": [item, item]}).json() == {"received": 2, "stored": 0}
    assert len(_rows(settings)) == 1


def test_the_same_moment_in_another_time_zone_is_the_same_item(client: TestClient, settings: Settings) -> None:
    """A client resending with its local offset (10:16 UTC as 11:16+01:00) resends, nothing new."""
    card = _issue_duration_card(client)
    item = overridden(card)
    assert item["outcomeTimestamp"] == "2026-11-21T10:16:00.000Z"
    client.post(FEEDBACK, json={"feedback": [item]})
    local = {**item, "outcomeTimestamp": "2026-11-21T11:16:00+01:00"}
    assert client.post(FEEDBACK, json={"feedback": [local]}).json() == {"received": 1, "stored": 0}
    assert len(_rows(settings)) == 1


def _stored(database_url: str) -> list[tuple[str, str | None, str | None]]:
    query = "SELECT outcome, override_code, user_comment FROM feedback ORDER BY id"
    return [tuple(row) for row in database_rows(database_url, query)]


def test_a_resend_that_says_something_else_of_the_same_moment_is_refused_naming_the_field(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """Not a resend but a correction: it must not silently lose to the first, nor replace it."""
    client = make_client(database_url=database_url)
    card = _issue_duration_card(client)
    assert client.post(FEEDBACK, json={"feedback": [overridden(card)]}).json() == {"received": 1, "stored": 1}
    other = overridden(card, code="dont-show-again")
    answer = client.post(FEEDBACK, json={"feedback": [overridden(card), other]})
    assert answer.status_code == 200
    assert answer.json()["stored"] == 0
    [refused] = answer.json()["refused"]
    assert refused["index"] == 1 and "overrideReason.reason.code" in refused["reason"]
    assert "outcomeTimestamp" in refused["reason"]
    assert _stored(database_url) == [("overridden", "already-addressed", None)]  # kept as first sent
    assert _issue_duration_card(client)["summary"] == card["summary"]  # not snoozed: the second reason not stored


def test_two_items_of_one_moment_differing_in_their_comment_store_the_first_and_refuse_the_second(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(database_url=database_url)
    card = _issue_duration_card(client)
    first, second = ({**overridden(card), "overrideReason": {"userComment": said}} for said in ("tapering", "stopping"))
    answer = client.post(FEEDBACK, json={"feedback": [first, second, first]}).json()
    assert answer == {
        "received": 3,
        "stored": 1,
        "refused": [{"index": 1, "reason": answer["refused"][0]["reason"]}],
    }
    assert "overrideReason.userComment" in answer["refused"][0]["reason"]
    assert "stopping" not in answer["refused"][0]["reason"]  # the fields' names, never what they hold
    assert _stored(database_url) == [("overridden", None, "tapering")]


def test_feedback_survives_a_restart(make_client: Callable[..., TestClient], settings: Settings) -> None:
    first = make_client()
    card = _issue_duration_card(first)
    first.post(FEEDBACK, json={"feedback": [overridden(card)]})
    first.__exit__(None, None, None)
    second = make_client()
    assert second.post(FEEDBACK, json={"feedback": [accepted(card)]}).json()["stored"] == 1
    assert [r["outcome"] for r in _rows(settings)] == ["overridden", "accepted"]
    assert {r["rule_id"] for r in _rows(settings)} == {"cyclobenzaprine-duration"}


def test_feedback_for_an_unknown_card_is_kept_without_a_rule(client: TestClient, settings: Settings) -> None:
    item = {
        **overridden({"uuid": "f0e1d2c3-0000-4000-8000-000000000000"}),
        "overrideReason": {"userComment": "not relevant"},
    }
    assert client.post(FEEDBACK, json={"feedback": [item]}).status_code == 200
    [row] = _rows(settings)
    assert row["rule_id"] is None and row["user_comment"] == "not relevant"


def test_feedback_on_unknown_cards_is_one_log_line_without_their_ids(
    client: TestClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch of feedback on cards the service never issued (a client's own ids, which it may
    build from anything) was a WARNING per item quoting each id: 1,000 lines for one call."""
    cards = [f"client-card-{n}-patient-4711" for n in range(30)]
    batch = [overridden({"uuid": card}) for card in cards]
    assert client.post(FEEDBACK, json={"feedback": batch}).status_code == 200
    lines = [r.getMessage() for r in caplog.records if "no record of" in r.getMessage()]
    assert lines == ["feedback: 30 item(s) name cards this service has no record of (first: item 0)"]
    assert "patient-4711" not in caplog.text
    assert len(_rows(settings)) == 30


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda i: i.pop("outcome"), "feedback.0.outcome"),
        (lambda i: i.update(outcome="ignored"), "feedback.0.outcome"),
        (lambda i: i.pop("acceptedSuggestions"), "feedback.0"),
        (lambda i: i.update(outcomeTimestamp="yesterday"), "feedback.0.outcomeTimestamp"),
        (lambda i: i.update(outcomeTimestamp=0), "feedback.0.outcomeTimestamp"),
        (lambda i: i.update(outcomeTimestamp="0"), "feedback.0.outcomeTimestamp"),
        (lambda i: i.update(outcomeTimestamp="1900-01-01T00:00:00Z"), "feedback.0.outcomeTimestamp"),
        (lambda i: i.pop("card"), "feedback.0.card"),
        (lambda i: i.update(overrideReason={}), "feedback.0.overrideReason"),
    ],
)
def test_invalid_feedback_is_400_naming_the_field(
    client: TestClient, settings: Settings, change: Any, field: str
) -> None:
    item = accepted(_issue_duration_card(client))
    change(item)
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 400, response.text
    assert field in response.json()["issue"][0]["expression"]
    assert _rows(settings) == []


@pytest.mark.parametrize("body", [{}, {"feedback": []}, {"feedback": "accepted"}, [], None])
def test_feedback_body_must_be_a_feedback_list(client: TestClient, body: Any) -> None:
    response = client.post(FEEDBACK, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text


def test_an_accepted_card_comes_back_while_the_order_still_breaks_its_rule(client: TestClient) -> None:
    """The sandbox applies only a suggestion's medication coding: after "Limit to 21 days" it
    re-fires with the 30-day draft, and the card must be there (a correctly applied suggestion
    makes the rule silent by itself)."""
    card = _issue_duration_card(client)
    assert client.post(FEEDBACK, json={"feedback": [accepted(card)]}).json()["stored"] == 1
    again = _issue_duration_card(client)
    assert again["uuid"] != card["uuid"]
    assert again["summary"] == card["summary"]


def test_with_snooze_off_an_overridden_card_comes_back(make_client: Callable[..., TestClient]) -> None:
    client = make_client(snooze_days=0)
    card = _issue_duration_card(client)
    client.post(FEEDBACK, json={"feedback": [overridden(card, "dont-show-again")]})
    assert rule_ids(
        client.post(SELECT, json=fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")).json()
    ) == ["cyclobenzaprine-duration"]


def _issue_older_adult_card(client: TestClient) -> dict[str, Any]:
    """A card with two suggestions: the 5 mg swap and removing the order."""
    cards = client.post(SELECT, json=fixture("cyclobenzaprine-older-adult/fires-age-65-10mg.json")).json()["cards"]
    [card] = [card for card in cards if card["source"]["topic"]["code"] == "cyclobenzaprine-older-adult"]
    assert len(card["suggestions"]) == 2
    return card


def test_a_resend_listing_the_accepted_suggestions_in_another_order_is_the_same_item(
    client: TestClient, settings: Settings
) -> None:
    card = _issue_older_adult_card(client)
    swap, remove = ({"id": suggestion["uuid"]} for suggestion in card["suggestions"])
    item = {**accepted(card), "acceptedSuggestions": [swap, remove]}
    assert client.post(FEEDBACK, json={"feedback": [item]}).json() == {"received": 1, "stored": 1}
    again = {**item, "acceptedSuggestions": [remove, swap, remove]}
    assert client.post(FEEDBACK, json={"feedback": [again]}).json() == {"received": 1, "stored": 0}
    assert len(_rows(settings)) == 1


def test_accepting_only_suggestions_the_card_did_not_offer_is_refused_naming_the_field(
    client: TestClient, settings: Settings
) -> None:
    """The id is the suggestion's uuid (CDS Hooks §Feedback): another (a label, a suggestion of
    another card) is a client's bug, refused rather than counted as a click on nothing. One id
    the card offered is enough: that acceptance is real (the swap's keeps its rule quiet)."""
    card, other = _issue_older_adult_card(client), _issue_duration_card(client)
    swap, remove = ({"id": suggestion["uuid"]} for suggestion in card["suggestions"])
    elsewhere = {**accepted(card), "acceptedSuggestions": [{"id": other["suggestions"][0]["uuid"]}]}
    labelled = {**accepted(card), "acceptedSuggestions": [{"id": card["suggestions"][1]["label"]}]}
    beside = {**accepted(card), "acceptedSuggestions": [{"id": "not-a-suggestion"}, remove], "outcomeTimestamp": NEXT}
    answer = client.post(FEEDBACK, json={"feedback": [elsewhere, accepted(other), labelled, beside]})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["received"], body["stored"]) == (4, 2)
    assert [r["index"] for r in body["refused"]] == [0, 2]
    assert {r["reason"] for r in body["refused"]} == {
        "acceptedSuggestions names no suggestion this card offered: each id is the uuid of one of the card's suggestions"
    }
    assert [row["card_uuid"] for row in _rows(settings)] == [other["uuid"], card["uuid"]]  # the refused: not stored
    assert 'cds_feedback_refused_total{kind="unoffered-suggestion"} 2.0' in client.get("/metrics").text
    # The same moment accepting what the card offered is stored: nothing of the refusal is kept.
    taken = {**elsewhere, "acceptedSuggestions": [swap]}
    assert client.post(FEEDBACK, json={"feedback": [taken]}).json() == {"received": 1, "stored": 1}


def test_refusals_of_either_kind_are_named_in_the_batchs_order(client: TestClient) -> None:
    card = _issue_older_adult_card(client)
    first = overridden(card)
    assert client.post(FEEDBACK, json={"feedback": [first]}).json()["stored"] == 1
    contradicting = overridden(card, code="dont-show-again")
    unoffered = {**accepted(card), "acceptedSuggestions": [{"id": "not-a-suggestion"}]}
    for batch, kinds in (
        ([contradicting, unoffered], ["with another", "no suggestion"]),
        ([unoffered, contradicting], ["no suggestion", "with another"]),
    ):
        refused = client.post(FEEDBACK, json={"feedback": batch}).json()["refused"]
        assert [r["index"] for r in refused] == [0, 1]
        assert [kind in r["reason"] for kind, r in zip(kinds, refused, strict=True)] == [True, True]
    metrics = client.get("/metrics").text
    for kind in ("contradiction", "unoffered-suggestion"):
        assert f'cds_feedback_refused_total{{kind="{kind}"}} 2.0' in metrics
