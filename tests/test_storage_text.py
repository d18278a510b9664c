"""Storage takes any string valid JSON can carry, and a feedback batch is stored item by item
(issue 16 #5), on the embedded SQLite file and on PostgreSQL.

PostgreSQL refuses U+0000 in text: a NUL in a feedback comment, code or card id was a 500 for
the whole batch on every resend, and a NUL in ``hookInstance`` lost the cards' record in the
background (their feedback then stored unmatched). Such characters are now stored as U+FFFD;
an item the database refuses for any other reason is named in the answer, the rest stored.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from tests.conftest import SELECT, fixture
from tests.feedback_calls import database_rows

FEEDBACK = f"{SELECT}/feedback"


def _card(client: TestClient, hook_instance: str | None = None) -> dict[str, Any]:
    request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
    if hook_instance is not None:
        request["hookInstance"] = hook_instance
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    return card


def _overridden(card_id: str, minute: int, **reason: Any) -> dict[str, Any]:
    return {
        "card": card_id,
        "outcome": "overridden",
        "outcomeTimestamp": f"2026-11-21T10:{minute:02d}:00Z",
        "overrideReason": reason or {"reason": {"code": "already-addressed"}},
    }


def _accepted(card_id: str, minute: int, suggestion: str) -> dict[str, Any]:
    item = {key: value for key, value in _overridden(card_id, minute).items() if key != "overrideReason"}
    return item | {"outcome": "accepted", "acceptedSuggestions": [{"id": suggestion}]}


def test_nul_in_feedback_is_stored_safely_and_blocks_no_item(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(database_url=database_url)
    card = _card(client)
    batch = [
        _overridden(card["uuid"], 1),
        _overridden(card["uuid"], 2, userComment="see\u0000note", reason={"code": "x\u0000", "display": "d\u0000"}),
        _overridden("card\u0000id", 3),
        _overridden(card["uuid"], 4, reason={"code": "benefit-outweighs-risk", "system": "urn:\u0000"}),
    ]
    response = client.post(FEEDBACK, json={"feedback": batch})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 4, "stored": 4}
    # Resent, as clients do: each item once.
    assert client.post(FEEDBACK, json={"feedback": batch}).json() == {"received": 4, "stored": 0}
    rows = database_rows(
        database_url, "SELECT card_uuid, override_code, override_display, user_comment FROM feedback ORDER BY id"
    )
    assert [tuple(row) for row in rows][1:3] == [
        (card["uuid"], "x\ufffd", "d\ufffd", "see\ufffdnote"),
        ("card\ufffdid", "already-addressed", None, None),
    ]
    body = client.get("/analytics").json()
    assert (body["totals"]["overridden"], body["unmatched_feedback"]) == (1, 1)


def test_nul_beside_characters_outside_ascii_is_stored_safely_too(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """Text outside ASCII takes another path to the database than ASCII: a NUL in a German
    comment or an accented code is replaced as one in plain ASCII is, the item stored."""
    client = make_client(database_url=database_url)
    card = _card(client)
    item = _overridden(card["uuid"], 1, userComment="Ärztin: später\u0000prüfen", reason={"code": "déjà\u0000vu"})
    assert client.post(FEEDBACK, json={"feedback": [item]}).json() == {"received": 1, "stored": 1}
    rows = database_rows(database_url, "SELECT override_code, user_comment FROM feedback")
    assert [tuple(row) for row in rows] == [("déjà\ufffdvu", "Ärztin: später\ufffdprüfen")]


def test_what_was_replaced_is_logged_by_column_never_by_value(
    make_client: Callable[..., TestClient], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator wondering why a comment holds U+FFFD finds which fields had it replaced; the
    words a clinician typed, which may name the patient, are not logged."""
    client = make_client(database_url=database_url)
    card = _card(client)
    caplog.set_level(logging.INFO, logger="cds_service.storage")
    item = _overridden(card["uuid"], 1, userComment="Mrs Example\u0000", reason={"code": "x\u0000"})
    assert client.post(FEEDBACK, json={"feedback": [item]}).json()["stored"] == 1
    said = [r.getMessage() for r in caplog.records if "U+FFFD" in r.getMessage()]
    assert said == ["feedback: NUL or lone surrogates replaced by U+FFFD in override_code, user_comment"]
    assert "Mrs Example" not in caplog.text


def test_nul_in_hook_instance_keeps_the_card_record(database_url: str, make_client: Callable[..., TestClient]) -> None:
    """The cards were answered but their record failed after the answer: feedback on them then
    found no card (unmatched, no rule, no snooze). A hookInstance that is no UUID is stored as
    the log says it: a client's free text there may name the patient."""
    client = make_client(database_url=database_url)
    card = _card(client, hook_instance="d3b07384-\u0000-4d1a")
    assert client.post(FEEDBACK, json={"feedback": [_overridden(card["uuid"], 5)]}).json()["stored"] == 1
    [(stored_instance, rule)] = database_rows(
        database_url, "SELECT hook_instance, feedback.rule_id FROM issued_cards JOIN feedback ON card_uuid = uuid"
    )
    assert (stored_instance, rule) == ("(not a UUID)", "cyclobenzaprine-duration")
    body = client.get("/analytics").json()
    assert (body["totals"]["issued"], body["totals"]["overridden"], body["unmatched_feedback"]) == (1, 1, 0)


def _refuse_code(database_url: str, code: str) -> None:
    """The database refuses one value, as it would one it cannot take (the service cannot tell)."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"ALTER TABLE feedback ADD CONSTRAINT refused CHECK (override_code <> '{code}')"))
        else:
            connection.execute(
                text(
                    f"CREATE TRIGGER refused BEFORE INSERT ON feedback WHEN NEW.override_code = '{code}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
    engine.dispose()


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_an_item_the_database_refuses_is_named_and_the_others_are_stored(
    make_client: Callable[..., TestClient], database_url: str, bad: int
) -> None:
    client = make_client(database_url=database_url)
    card = _card(client)
    _refuse_code(database_url, "refused-by-the-database")
    batch = [_overridden(card["uuid"], minute) for minute in (1, 2, 3)]
    batch[bad]["overrideReason"] = {"reason": {"code": "refused-by-the-database"}}
    response = client.post(FEEDBACK, json={"feedback": batch})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["received"], body["stored"]) == (3, 2)
    assert [r["index"] for r in body["refused"]] == [bad] and "could not store" in body["refused"][0]["reason"]
    # A resend stores nothing twice and names the same item again.
    again = client.post(FEEDBACK, json={"feedback": batch}).json()
    assert (again["stored"], [r["index"] for r in again["refused"]]) == (0, [bad])
    assert len(database_rows(database_url, "SELECT id FROM feedback")) == 2


def test_item_by_item_the_refusals_of_every_kind_are_named_in_the_batchs_order(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(database_url=database_url)
    card = _card(client)
    _refuse_code(database_url, "refused-by-the-database")
    unoffered = _accepted(card["uuid"], 3, "no-such")
    batch = [
        _overridden(card["uuid"], 1, reason={"code": "refused-by-the-database"}),
        _overridden(card["uuid"], 2),
        unoffered,
    ]
    body = client.post(FEEDBACK, json={"feedback": batch}).json()
    assert (body["stored"], [r["index"] for r in body["refused"]]) == (1, [0, 2])
    assert "could not store" in body["refused"][0]["reason"] and "no suggestion" in body["refused"][1]["reason"]
    metrics = client.get("/metrics").text
    for kind in ("database", "unoffered-suggestion"):
        assert f'cds_feedback_refused_total{{kind="{kind}"}} 1.0' in metrics


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The feedback writer's WARNING lines but those naming an item the database refused."""
    lines = [r.getMessage() for r in caplog.records if r.name == "cds_service.storage.feedback_writer"]
    return [line for line in lines if "refused" not in line]


def test_item_by_item_each_warning_is_said_once(
    make_client: Callable[..., TestClient], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The batch the database refused whole is not heard of twice: what its items met (cards
    unknown, a suggestion not offered, a contradiction) is said once, after they are stored."""
    client = make_client(database_url=database_url)
    card = _card(client)
    _refuse_code(database_url, "refused-by-the-database")
    assert client.post(FEEDBACK, json={"feedback": [_overridden(card["uuid"], 4)]}).json()["stored"] == 1
    batch = [
        _overridden(card["uuid"], 1, reason={"code": "refused-by-the-database"}),
        _accepted(card["uuid"], 3, "no-such"),
        _overridden("no-such-card", 2),
        _overridden(card["uuid"], 4, reason={"code": "another-reason"}),  # that moment said otherwise
        _overridden("no-such-card-either", 5),
    ]
    caplog.clear()
    body = client.post(FEEDBACK, json={"feedback": batch}).json()
    assert (body["stored"], [r["index"] for r in body["refused"]]) == (2, [0, 1, 3])
    assert _warnings(caplog) == [
        "feedback: 2 item(s) name cards this service has no record of (first: item 2)",
        "feedback back-spasm-order-select: 1 item(s) from an unauthenticated client accept only suggestions their card "
        "did not offer",
        "feedback: 1 item(s) contradict feedback stored for the same moment",
    ]


def test_a_batch_about_a_card_whose_suggestions_cannot_be_read_says_so_once(
    make_client: Callable[..., TestClient], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(database_url=database_url)
    card = _card(client)
    assert client.post(FEEDBACK, json={"feedback": [_overridden(card["uuid"], 9)]}).json()["stored"] == 1  # written
    engine = create_engine(database_url)
    with engine.begin() as connection:  # changed by hand
        connection.execute(text("UPDATE issued_cards SET suggestions = 'not JSON'"))
    engine.dispose()
    accepted = [_accepted(card["uuid"], minute, "a label") for minute in (1, 2, 3)]
    caplog.clear()
    assert client.post(FEEDBACK, json={"feedback": accepted}).json() == {"received": 3, "stored": 3}  # as sent
    assert _warnings(caplog) == [
        "feedback: 3 item(s) name cards whose stored suggestions could not be read; taken as sent"
    ]


# All of Unicode but lone surrogates (no JSON parser here accepts them), NUL and its kin often.
_CHARACTERS = st.characters() | st.sampled_from(["\x00", "\x1b", "\x7f", "\u2028", "\ufeff", "\U0010ffff"])


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    comment=st.text(_CHARACTERS, max_size=40),
    code=st.text(_CHARACTERS, min_size=1, max_size=20),
    card_id=st.text(_CHARACTERS, min_size=1, max_size=30),
)
@example(comment="see\x00note", code="\x00", card_id="card\x00\x1b[2J")
def test_any_text_in_feedback_is_stored(
    make_client: Callable[..., TestClient], database_url: str, comment: str, code: str, card_id: str
) -> None:
    """Whatever characters valid JSON carries (NUL and control characters included), each item is
    stored, never a 5xx."""
    # One app for every example: ``setdefault(url, make_client(...))`` made one per example (its
    # argument is evaluated first), 26 apps' pools open at once, and PostgreSQL refused clients.
    if (client := _clients.get(database_url)) is None:
        client = _clients[database_url] = make_client(database_url=database_url)
    # Each example a card of its own: one that says something else of a stored moment is refused.
    card_id += f"#{next(_examples)}"
    item = _overridden(card_id, 7, reason={"code": code, "system": code}, userComment=comment or None)
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "stored": 1}


_clients: dict[str, TestClient] = {}
_examples = itertools.count()
