"""Analytics are scoped to the caller (issue 16 #7): a trusted client reads the figures of the
cards issued to it (its issuer, and its tenant) and of the feedback it sent; an operator's client
(``"operator": true`` in the trusted-clients file) reads every client's. Cards stored before
schema version 6, or with authentication off, belong to no client: only an operator sees them.
What feedback and earlier cards quiet is a client's own too: a patient id is one EHR's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.conftest import NOON, SELECT, SIGN, fixture
from tests.feedback_calls import database_rows, keyed_as_before_version_14, overridden
from tests.tokens import ISSUER, SigningKey, claims, jwks

BASE = "http://testserver"
SOUTH = "https://south.example.org"
OPERATOR = "https://informatics.example.org"
DURATION = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
SEVERAL = "multiple-rules/av-block-resolved-sertraline-70.json"
DURATION_RULE = "cyclobenzaprine-duration"


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {name: SigningKey.generate("ES384") for name in ("north", "south", "operator")}


@pytest.fixture
def secure(
    make_client: Callable[..., TestClient], tmp_path: Path, keys: dict[str, SigningKey]
) -> Callable[..., TestClient]:
    trusted = tmp_path / "trusted-clients.json"
    trusted.write_text(
        json.dumps(
            [
                {"iss": ISSUER, "jwks": jwks(keys["north"]), "tenant": "north"},
                {"iss": SOUTH, "jwks": jwks(keys["south"])},
                {"iss": OPERATOR, "jwks": jwks(keys["operator"]), "operator": True},
            ]
        )
    )
    return lambda **settings: make_client(auth_mode="required", trusted_clients_file=trusted, **settings)


def _as(keys: dict[str, SigningKey], who: str, path: str) -> dict[str, str]:
    issuer = {"north": ISSUER, "south": SOUTH, "operator": OPERATOR}[who]
    extra = {"tenant": "north"} if who == "north" else {}
    token = keys[who].sign(claims(BASE + path, NOON, iss=issuer, **extra))
    return {"Authorization": f"Bearer {token}"}


def _post(client: TestClient, keys: dict[str, SigningKey], who: str, path: str, body: Any) -> dict[str, Any]:
    response = client.post(path, json=body, headers=_as(keys, who, path))
    assert response.status_code == 200, response.text
    return response.json()


def _analytics(client: TestClient, keys: dict[str, SigningKey], who: str) -> dict[str, Any]:
    response = client.get("/analytics", headers=_as(keys, who, "/analytics"))
    assert response.status_code == 200, response.text
    return response.json()


def _issued(body: dict[str, Any]) -> dict[str, int]:
    return {rule["rule_id"]: rule["issued"] for rule in body["rules"]}


def test_a_client_reads_its_own_cards_and_an_operator_every_clients(
    secure: Callable[..., TestClient], keys: dict[str, SigningKey]
) -> None:
    client = secure()
    north = _post(client, keys, "north", SELECT, fixture(DURATION))["cards"]
    south = _post(client, keys, "south", SELECT, {**fixture(SEVERAL), "hookInstance": "south-1"})["cards"]
    assert [c["source"]["topic"]["code"] for c in north] == ["cyclobenzaprine-duration"]
    overridden = {"outcome": "overridden", "outcomeTimestamp": "2026-11-21T11:00:00Z"}
    _post(client, keys, "south", f"{SELECT}/feedback", {"feedback": [{"card": south[0]["uuid"], **overridden}]})
    _post(client, keys, "north", f"{SELECT}/feedback", {"feedback": [{"card": "no-such-card", **overridden}]})

    mine = _analytics(client, keys, "north")
    assert _issued(mine) == {"cyclobenzaprine-duration": 1}
    assert (mine["totals"]["overridden"], mine["unmatched_feedback"]) == (0, 1)
    assert mine["scope"] == {"clients": "one", "issuer": ISSUER, "tenant": "north"}
    theirs = _analytics(client, keys, "south")
    assert _issued(theirs) == {c["source"]["topic"]["code"]: 1 for c in south}
    assert (theirs["totals"]["overridden"], theirs["unmatched_feedback"]) == (1, 0)
    everyone = _analytics(client, keys, "operator")
    assert everyone["scope"] == {"clients": "all"}
    assert everyone["totals"]["issued"] == len(north) + len(south) and everyone["unmatched_feedback"] == 1
    page = client.get("/analytics/report", headers=_as(keys, "north", "/analytics/report"))
    assert page.status_code == 200 and "1 alerts: 0 accepted" in page.text


def test_cards_of_no_client_are_an_operators_only(
    make_client: Callable[..., TestClient], secure: Callable[..., TestClient], keys: dict[str, SigningKey]
) -> None:
    """Cards stored with authentication off (as before schema version 6) name no client."""
    first = make_client()
    first.post(SELECT, json=fixture(DURATION))
    first.get("/analytics")  # the record is written behind the answer: read back, it is written
    client = secure()
    assert _analytics(client, keys, "north")["totals"]["issued"] == 0
    assert _analytics(client, keys, "south")["totals"]["issued"] == 0
    assert _issued(_analytics(client, keys, "operator")) == {"cyclobenzaprine-duration": 1}


def test_without_authentication_every_card_is_counted(client: TestClient) -> None:
    client.post(SELECT, json=fixture(DURATION))
    body = client.get("/analytics").json()
    assert (body["scope"], body["totals"]["issued"]) == ({"clients": "all"}, 1)


def _rules(body: dict[str, Any]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in body["cards"]]


def test_a_clients_feedback_quiets_only_its_own_patients(
    secure: Callable[..., TestClient], keys: dict[str, SigningKey], database_url: str
) -> None:
    """A patient id is unique within one EHR only: north's "don't show again" and the cards north
    showed at order-select are north's patient's. They silenced south's patient of the same id:
    the snooze hid south's duration card, and south's order-sign did not repeat what only
    north's order-select had shown."""
    client = secure(database_url=database_url)
    request = fixture(DURATION)
    card = _post(client, keys, "north", SELECT, request)["cards"][0]
    snooze = overridden(card, "dont-show-again")
    _post(client, keys, "north", f"{SELECT}/feedback", {"feedback": [snooze]})
    assert _rules(_post(client, keys, "north", SELECT, {**request, "hookInstance": "north-2"})) == []
    assert _rules(_post(client, keys, "south", SELECT, {**request, "hookInstance": "south-1"})) == [
        "cyclobenzaprine-duration"
    ]

    other = {**fixture(SEVERAL), "hookInstance": "north-3"}
    shown = _rules(_post(client, keys, "north", SELECT, other))
    assert shown == ["cyclobenzaprine-older-adult", "cyclobenzaprine-serotonergic"]  # duration: snoozed
    signed = {**other, "hook": "order-sign", "hookInstance": "south-2"}
    signed["context"] = {k: v for k, v in other["context"].items() if k != "selections"}
    # South's patient: nothing shown to it at order-select, nothing snoozed: every card.
    assert _rules(_post(client, keys, "south", SIGN, signed)) == [*shown, "cyclobenzaprine-duration"]
    assert _rules(_post(client, keys, "north", SIGN, {**signed, "hookInstance": "north-4"})) == []


def test_feedback_contradicting_another_clients_tells_nothing_of_it(
    secure: Callable[..., TestClient], keys: dict[str, SigningKey], database_url: str
) -> None:
    """An item contradicting one stored of the same moment is refused, naming the fields that
    differ: only when the stored item is the sender's own. South, sending of north's card, learns
    nothing of what north wrote: its item of north's moment is its own, stored (before schema
    version 14 it was taken for a resend, and not stored), and what a later item of south's is
    held to."""
    client = secure(database_url=database_url)
    card = _post(client, keys, "north", SELECT, fixture(DURATION))["cards"][0]
    feedback = f"{SELECT}/feedback"
    commented = {**overridden(card, "already-addressed"), "overrideReason": {"userComment": "north's note"}}
    assert _post(client, keys, "north", feedback, {"feedback": [commented]}) == {"received": 1, "stored": 1}
    guess = {**commented, "overrideReason": {"userComment": "a guess"}}
    assert _post(client, keys, "south", feedback, {"feedback": [guess]}) == {"received": 1, "stored": 1}
    assert _post(client, keys, "south", feedback, {"feedback": [guess]}) == {"received": 1, "stored": 0}
    refused = _post(client, keys, "north", feedback, {"feedback": [guess]})["refused"]
    assert [r["index"] for r in refused] == [0] and "overrideReason.userComment" in refused[0]["reason"]
    second = {**guess, "overrideReason": {"userComment": "south's second thought"}}
    refused = _post(client, keys, "south", feedback, {"feedback": [second]})["refused"]
    assert [r["index"] for r in refused] == [0] and "overrideReason.userComment" in refused[0]["reason"]


def test_two_clients_items_of_one_card_and_moment_are_each_stored_once(
    secure: Callable[..., TestClient], keys: dict[str, SigningKey], database_url: str
) -> None:
    """The once-only key was the card's uuid, outcome and time alone: south, sending first with
    the uuid of north's card, had north's own "don't show again" of that moment answered
    ``stored: 0`` as a resend, and lost (north's patient not snoozed, north's override not
    counted). Each client's item is stored, each once however often resent."""
    client = secure(database_url=database_url)
    request = fixture(DURATION)
    card = _post(client, keys, "north", SELECT, request)["cards"][0]
    snooze = overridden(card, "dont-show-again")
    feedback = f"{SELECT}/feedback"
    for sent, who in ((1, "south"), (1, "north"), (0, "south"), (0, "north")):
        assert _post(client, keys, who, feedback, {"feedback": [snooze]}) == {"received": 1, "stored": sent}, who
    rows = database_rows(database_url, "SELECT issuer, tenant, card_uuid, override_code FROM feedback")
    assert sorted(rows, key=lambda row: row.issuer) == [
        (ISSUER, "north", card["uuid"], "dont-show-again"),
        (SOUTH, None, card["uuid"], "dont-show-again"),
    ]
    assert _rules(_post(client, keys, "north", SELECT, {**request, "hookInstance": "north-2"})) == []  # snoozed
    for who, overrides, unmatched in (("north", 1, 0), ("south", 0, 1), ("operator", 1, 1)):
        figures = _analytics(client, keys, who)
        assert (figures["totals"]["overridden"], figures["unmatched_feedback"]) == (overrides, unmatched), who


def test_without_authentication_a_resent_item_is_stored_once(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """No client (authentication off, its columns null) is one client to the once-only key: a
    unique index takes nulls for distinct, and a key of the client's columns as they are would
    store every resend again."""
    client = make_client(database_url=database_url)
    card = _post_open(client, SELECT, fixture(DURATION))["cards"][0]
    for sent in (1, 0, 0):
        answer = _post_open(client, f"{SELECT}/feedback", {"feedback": [overridden(card)]})
        assert answer == {"received": 1, "stored": sent}
    assert database_rows(database_url, "SELECT issuer, tenant FROM feedback") == [(None, None)]


def _post_open(client: TestClient, path: str, body: Any) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_database_of_version_13_keeps_its_feedback_and_then_stores_each_clients_own(
    secure: Callable[..., TestClient], keys: dict[str, SigningKey], database_url: str
) -> None:
    """Version 14 gives the once-only key the item's client: on SQLite by making the feedback
    table again, its rows copied. Every row is kept as it was, ids too, north's snooze holds, a
    resend is still no new item, and south's item of north's moment is stored now."""
    before = secure(database_url=database_url)
    request = fixture(DURATION)
    card = _post(before, keys, "north", SELECT, request)["cards"][0]
    snooze = overridden(card, "dont-show-again")
    feedback = f"{SELECT}/feedback"
    _post(before, keys, "north", feedback, {"feedback": [snooze]})
    _post(before, keys, "south", feedback, {"feedback": [{**snooze, "card": "no-such-card"}]})
    engine = create_engine(database_url)
    with engine.begin() as connection:  # as the release before left it
        keyed_as_before_version_14(connection)
        connection.execute(text("UPDATE schema_version SET version = 13"))  # created at the last: its one row
    engine.dispose()
    stored = "SELECT * FROM feedback ORDER BY id"
    rows = database_rows(database_url, stored)
    upgraded = secure(database_url=database_url)
    assert upgraded.get("/readyz").json()["checks"]["database"] == "ok, schema version 15"
    assert database_rows(database_url, stored) == rows
    assert _rules(_post(upgraded, keys, "north", SELECT, {**request, "hookInstance": "north-2"})) == []
    assert _post(upgraded, keys, "north", feedback, {"feedback": [snooze]}) == {"received": 1, "stored": 0}
    assert _post(upgraded, keys, "south", feedback, {"feedback": [snooze]}) == {"received": 1, "stored": 1}
    assert _post(upgraded, keys, "south", feedback, {"feedback": [snooze]}) == {"received": 1, "stored": 0}
    now = database_rows(database_url, stored)
    assert (now[: len(rows)], len(now)) == (rows, len(rows) + 1)


def test_an_unoffered_suggestion_is_refused_only_on_the_senders_own_card(
    secure: Callable[..., TestClient], keys: dict[str, SigningKey]
) -> None:
    """Feedback accepting only suggestions its card did not offer is refused, naming the field;
    the check tells nothing of another client's card: south's item on north's card is stored as sent."""
    client = secure()
    card = _post(client, keys, "north", SELECT, fixture(DURATION))["cards"][0]
    unoffered = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "not-a-suggestion-of-this-card"}],
        "outcomeTimestamp": "2026-11-21T11:00:00Z",
    }
    feedback = f"{SELECT}/feedback"
    refused = _post(client, keys, "north", feedback, {"feedback": [unoffered]})["refused"]
    assert [r["index"] for r in refused] == [0] and "acceptedSuggestions names no suggestion" in refused[0]["reason"]
    assert _post(client, keys, "south", feedback, {"feedback": [unoffered]}) == {"received": 1, "stored": 1}
    # South's item stored the moment: north's own item of it, accepting nothing offered, is still
    # refused (a resend is the sender's own moment stored, not another's).
    again = {**unoffered, "outcomeTimestamp": "2026-11-21T11:05:00Z"}
    assert _post(client, keys, "south", feedback, {"feedback": [again]}) == {"received": 1, "stored": 1}
    assert [r["index"] for r in _post(client, keys, "north", feedback, {"feedback": [again]})["refused"]] == [0]


def test_another_clients_acceptance_is_stored_and_counted_as_its_unmatched_feedback(
    secure: Callable[..., TestClient], keys: dict[str, SigningKey], database_url: str
) -> None:
    """South's items on north's card are stored unchecked (a refusal would tell south what north's
    card offered), and are about no card of south's: an earlier release counted them as north's
    (an acceptance of a suggestion the card offered was north's alert accepted, and brought the
    card back at north's order-sign). Neither, now: south's unmatched feedback."""
    client = secure(database_url=database_url)
    request = fixture(DURATION)
    card = _post(client, keys, "north", SELECT, request)["cards"][0]
    [offered, *_] = [suggestion["uuid"] for suggestion in card["suggestions"]]
    items = [
        {
            "card": card["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": suggestion}],
            "outcomeTimestamp": at,
        }
        for suggestion, at in ((offered, "2026-11-21T11:00:00Z"), ("not-offered", "2026-11-21T11:01:00Z"))
    ]
    assert _post(client, keys, "south", f"{SELECT}/feedback", {"feedback": items}) == {"received": 2, "stored": 2}
    for who, unmatched in (("north", 0), ("south", 2), ("operator", 2)):
        figures = _analytics(client, keys, who)
        assert (figures["totals"]["accepted"], figures["unoffered_suggestions"]) == (0, 0), who
        assert figures["unmatched_feedback"] == unmatched, who
    assert _analytics(client, keys, "north")["totals"]["ignored"] == 1
    page = client.get("/analytics/report", headers=_as(keys, "south", "/analytics/report")).text
    assert "2 feedback item(s) referred to cards the service has no record of" in page
    signed = {**request, "hook": "order-sign", "hookInstance": "north-2"}
    signed["context"] = {k: v for k, v in request["context"].items() if k != "selections"}
    assert _rules(_post(client, keys, "north", SIGN, signed)) == []  # shown at order-select, not accepted


def _as_an_older_release_stored(database_url: str) -> None:
    """South's items given their card's rule and patient, as releases before this one stored them."""
    engine = create_engine(database_url)
    cards = "SELECT {} FROM issued_cards WHERE issued_cards.uuid = feedback.card_uuid"
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    f"UPDATE feedback SET rule_id = ({cards.format('rule_id')}), "
                    f"patient_key = ({cards.format('patient_key')}) WHERE issuer = :south"
                ),
                {"south": SOUTH},
            )
    finally:
        engine.dispose()


def test_another_clients_snooze_quiets_nothing_of_the_cards_client(
    secure: Callable[..., TestClient], keys: dict[str, SigningKey], database_url: str
) -> None:
    """South, holding the uuid of a card issued to north, sent "don't show again" for it: stored,
    it snoozed north's patient (north's next call had no card) and stood in north's figures as
    north's override. It is south's feedback about no card of south's; north's own snooze holds."""
    client = secure(database_url=database_url)
    request = fixture(DURATION)
    card = _post(client, keys, "north", SELECT, request)["cards"][0]
    snooze = overridden(card, "dont-show-again")
    assert _post(client, keys, "south", f"{SELECT}/feedback", {"feedback": [snooze]}) == {"received": 1, "stored": 1}
    again = _post(client, keys, "north", SELECT, {**request, "hookInstance": "north-2"})
    assert _rules(again) == [DURATION_RULE]
    _as_an_older_release_stored(database_url)  # with north's card's rule and patient: still south's
    restarted = secure(database_url=database_url)
    assert _rules(_post(restarted, keys, "north", SELECT, {**request, "hookInstance": "north-2b"})) == [DURATION_RULE]
    for who, unmatched in (("north", 0), ("south", 1), ("operator", 1)):
        figures = _analytics(client, keys, who)
        assert (figures["totals"]["overridden"], figures["unmatched_feedback"]) == (0, unmatched), who
        assert [rule["override_reasons"] for rule in figures["rules"]] in ([[]], []), who
    own = {**overridden(again["cards"][0], "dont-show-again"), "outcomeTimestamp": "2026-11-21T11:05:00Z"}
    assert _post(client, keys, "north", f"{SELECT}/feedback", {"feedback": [own]}) == {"received": 1, "stored": 1}
    assert _rules(_post(client, keys, "north", SELECT, {**request, "hookInstance": "north-3"})) == []
    assert _analytics(client, keys, "north")["totals"]["overridden"] == 1


def test_another_clients_later_item_about_a_card_leaves_the_cards_clients_snooze(
    secure: Callable[..., TestClient], keys: dict[str, SigningKey], database_url: str
) -> None:
    """The snooze is read from the card's latest item of its own client's: south's override of
    north's card, sent after north's "don't show again" (and given north's patient, as an older
    release stored it), is no correction of north's."""
    client = secure(database_url=database_url)
    request = fixture(DURATION)
    card = _post(client, keys, "north", SELECT, request)["cards"][0]
    own = overridden(card, "dont-show-again")
    assert _post(client, keys, "north", f"{SELECT}/feedback", {"feedback": [own]}) == {"received": 1, "stored": 1}
    assert _rules(_post(client, keys, "north", SELECT, {**request, "hookInstance": "north-2"})) == []
    theirs = {**overridden(card, "already-addressed"), "outcomeTimestamp": "2026-11-21T11:05:00Z"}
    assert _post(client, keys, "south", f"{SELECT}/feedback", {"feedback": [theirs]}) == {"received": 1, "stored": 1}
    _as_an_older_release_stored(database_url)
    restarted = secure(database_url=database_url)
    assert _rules(_post(restarted, keys, "north", SELECT, {**request, "hookInstance": "north-3"})) == []
    later = {**overridden(card, "already-addressed"), "outcomeTimestamp": "2026-11-21T11:10:00Z"}
    assert _post(restarted, keys, "north", f"{SELECT}/feedback", {"feedback": [later]}) == {"received": 1, "stored": 1}
    assert _rules(_post(restarted, keys, "north", SELECT, {**request, "hookInstance": "north-4"})) == [DURATION_RULE]


def test_a_client_reads_only_its_own_override_reasons(
    secure: Callable[..., TestClient], keys: dict[str, SigningKey]
) -> None:
    """Both clients' clinicians saw the duration rule; only south's overrode it, with a reason:
    north's figures for the rule hold no reason (another client's is not north's to read)."""
    client = secure()
    _post(client, keys, "north", SELECT, fixture(DURATION))
    card = _post(client, keys, "south", SELECT, {**fixture(DURATION), "hookInstance": "south-1"})["cards"][0]
    _post(client, keys, "south", f"{SELECT}/feedback", {"feedback": [overridden(card, "benefit-outweighs-risk")]})
    for who, codes in (("north", []), ("south", ["benefit-outweighs-risk"]), ("operator", ["benefit-outweighs-risk"])):
        [rule] = _analytics(client, keys, who)["rules"]
        assert [reason["code"] for reason in rule["override_reasons"]] == codes, who
