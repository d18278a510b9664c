"""An accepted suggestion's uuid names the suggestion its card offered whatever its case (RFC
9562: UUIDs are case-insensitive), as a card's uuid does (``test_feedback_card_case``). Sent in
upper case, it was compared as sent: the item was refused as accepting nothing its card offered,
in a 200 a client takes for delivered, and the acceptance was lost to analytics and to what
quiets a rule after its swap is accepted. It is stored in lower case now, as the service issues
its uuids; what an earlier release stored as sent is matched the same way where it is read. An
id that is not a UUID is compared as sent."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.conftest import SELECT, Clock, cards_for, fixture, rule_ids
from tests.feedback_calls import DAY_2, FEEDBACK, by_rule, database_rows

OLDER_ADULT = "cyclobenzaprine-older-adult"
TEN_MG = "cyclobenzaprine-older-adult/fires-age-65-10mg.json"


def _card(client: TestClient) -> tuple[dict[str, Any], str, str]:
    """The older-adult card, and the uuids of its two suggestions: the 5 mg swap, and removing the order."""
    [card] = cards_for(client.post(SELECT, json=fixture(TEN_MG)).json(), OLDER_ADULT)
    [swap] = [s["uuid"] for s in card["suggestions"] if s["actions"][0]["type"] == "update"]
    [remove] = [s["uuid"] for s in card["suggestions"] if s["uuid"] != swap]
    return card, swap, remove


def _accepting(card: dict[str, Any], *ids: str) -> dict[str, Any]:
    item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
    return {**item, "acceptedSuggestions": [{"id": id_} for id_ in ids]}


def _quiet_for_the_swapped_draft(client: TestClient, card: dict[str, Any]) -> bool:
    """Is the rule quiet for the draft as the 5 mg swap leaves it (the sandbox applies its
    medication only)?"""
    swap = next(s for s in card["suggestions"] if s["actions"][0]["type"] == "update")
    swapped = copy.deepcopy(fixture(TEN_MG))
    [entry] = swapped["context"]["draftOrders"]["entry"]
    entry["resource"]["medicationCodeableConcept"] = swap["actions"][0]["resource"]["medicationCodeableConcept"]
    response = client.post(SELECT, json=swapped)
    assert response.status_code == 200, response.text
    return OLDER_ADULT not in rule_ids(response.json())


def _accepted_and_unoffered(client: TestClient) -> tuple[int, int]:
    analytics = client.get("/analytics", params={"from": "2026-11-21"}).json()
    return by_rule(analytics)[OLDER_ADULT]["accepted"], analytics["unoffered_suggestions"]


def _send(client: TestClient, item: dict[str, Any]) -> dict[str, Any]:
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_suggestion_uuid_in_upper_case_names_the_suggestion_its_card_offered(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()))
    card, swap, _ = _card(client)
    assert _send(client, _accepting(card, swap.upper())) == {"received": 1, "stored": 1}
    assert _quiet_for_the_swapped_draft(client, card)
    assert _accepted_and_unoffered(client) == (1, 0)
    # The same item, resent as the suggestion was issued, or in mixed case: stored once.
    assert _send(client, _accepting(card, swap)) == {"received": 1, "stored": 0}
    assert _send(client, _accepting(card, swap[:8].upper() + swap[8:])) == {"received": 1, "stored": 0}


def test_a_suggestion_id_that_is_not_a_uuid_is_kept_and_compared_as_sent(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """One id the card offered is enough for the item to be stored (``storage.offered``); the
    other, a label sent by mistake, is no UUID: stored as sent, and another spelling of it in a
    resend says something else of the moment."""
    client = make_client(database_url=database_url, clock=Clock(DAY_2.timestamp()))
    card, _, remove = _card(client)
    assert _send(client, _accepting(card, "Remove-Order", remove.upper())) == {"received": 1, "stored": 1}
    answer = _send(client, _accepting(card, "remove-order", remove))
    assert (answer["stored"], [r["reason"].split(";")[0] for r in answer["refused"]]) == (
        0,
        ["feedback for this card, outcome and outcomeTimestamp is stored with another acceptedSuggestions"],
    )


def _accepted_then_changed(
    make_client: Callable[..., TestClient], database_url: str, update: str
) -> tuple[TestClient, dict[str, Any], str]:
    """The swap accepted, the stored row then changed by ``update`` (SQL) with the service
    stopped, and the service started again: the new app, the card and its swap's uuid."""
    clock = Clock(DAY_2.timestamp())
    before = make_client(database_url=database_url, clock=clock)
    card, swap, _ = _card(before)
    assert _send(before, _accepting(card, swap))["stored"] == 1
    before.__exit__(None, None, None)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(update))
    engine.dispose()
    return make_client(database_url=database_url, clock=clock), card, swap


def test_suggestion_uuids_an_earlier_release_stored_in_upper_case_count_as_accepted(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """Stored as sent by an earlier release (unchecked: it reached the database before its card's
    record, or its card had no list of suggestions to check it against), with no migration to
    mend it: read, it is the acceptance it always was, and a resend in lower case is a resend."""
    upper = "UPDATE feedback SET accepted_suggestions = upper(accepted_suggestions)"
    after, card, swap = _accepted_then_changed(make_client, database_url, upper)
    assert database_rows(database_url, "SELECT accepted_suggestions FROM feedback") == [(json.dumps([swap.upper()]),)]
    assert _quiet_for_the_swapped_draft(after, card)
    assert _accepted_and_unoffered(after) == (1, 0)
    assert _send(after, _accepting(card, swap)) == {"received": 1, "stored": 0}


def test_suggestion_ids_changed_by_hand_into_objects_name_no_suggestion_and_fail_no_call(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    """An object or a list among stored ids (edited by hand) met ``in`` the card's ids raised
    TypeError on every hook call for that patient that day (a code review): it names nothing."""
    by_hand = """UPDATE feedback SET accepted_suggestions = '[{"id": "x"}, ["y"]]'"""
    after, card, swap = _accepted_then_changed(make_client, database_url, by_hand)
    assert not _quiet_for_the_swapped_draft(after, card)  # a 200, the rule not quieted by nothing
    answer = _send(after, _accepting(card, swap))  # what is stored says otherwise: kept, not replaced
    assert (answer["received"], answer["stored"], len(answer["refused"])) == (1, 0, 1)
