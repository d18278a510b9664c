"""What the analytics count, at their edges: the range asked for (by default the last 30 days,
at most 400), the periods it is cut into, what one alert is (one patient's one draft), and what
counts for an alert only once (a card with two feedback items, a reason of an alert accepted in
the end, feedback outside the range)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import TODAY, Clock, fixture, for_patient
from tests.feedback_calls import DAY_1, SELECT, by_rule, issued, overridden, send_feedback

DURATION = "cyclobenzaprine-duration"
NAME = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"


def _figures(client: TestClient, **query: str) -> dict[str, Any]:
    response = client.get("/analytics", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_range_is_the_last_30_days_by_default_and_at_most_400(client: TestClient) -> None:
    """The default is 30 days, today among them; 400 days is the retention period, every stored card."""
    empty = _figures(client)
    assert empty["from"] == (TODAY - timedelta(days=29)).isoformat()
    assert (empty["totals"]["acceptance_rate"], empty["totals"]["override_rate"]) == (None, None)  # not 0 %
    widest = {"from": (TODAY - timedelta(days=399)).isoformat(), "to": TODAY.isoformat()}
    assert _figures(client, **widest)["from"] == widest["from"]
    assert _figures(client, **{"from": "1970-01-01", "to": "1970-01-05"})["from"] == "1970-01-01"  # the first day
    response = client.get("/analytics", params={**widest, "from": (TODAY - timedelta(days=400)).isoformat()})
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["from"]


def test_a_month_is_counted_from_its_first_day(client: TestClient) -> None:
    issued(client, NAME)
    [period] = by_rule(_figures(client, period="month"))[DURATION]["periods"]
    assert (period["start"], period["issued"]) == ("2026-11-01", 1)


def test_each_patients_each_draft_is_an_alert_of_its_own(client: TestClient) -> None:
    """Two patients whose drafts have the same id, and a second draft of one of them: three
    alerts, each overridden for the same reason: three alerts given it."""
    drafts = (("harness-pt-1", "request-123"), ("another-patient", "request-123"), ("harness-pt-1", "rx-2"))
    cards = [_issued_for(client, draft, patient=patient)[DURATION] for patient, draft in drafts]
    send_feedback(client, *(overridden(card, "already-addressed") for card in cards))
    duration = by_rule(_figures(client))[DURATION]
    assert (duration["issued"], duration["overridden"], duration["cards_shown"]) == (3, 3, 3)
    assert [(r["code"], r["count"]) for r in duration["override_reasons"]] == [("already-addressed", 3)]


def test_a_card_overridden_twice_is_one_card_shown_and_one_alert_for_its_reason(client: TestClient) -> None:
    """Two clinicians (or one, twice) dismissed the same card: it was still shown once."""
    card = issued(client, NAME)[DURATION]
    later = {**overridden(card, "already-addressed"), "outcomeTimestamp": "2026-11-21T11:30:00Z"}
    send_feedback(client, overridden(card, "already-addressed"), later)
    duration = by_rule(_figures(client))[DURATION]
    assert (duration["issued"], duration["overridden"], duration["cards_shown"]) == (1, 1, 1)
    assert [(r["code"], r["count"]) for r in duration["override_reasons"]] == [("already-addressed", 1)]


def test_reasons_and_unmatched_feedback_outside_the_range_are_not_counted(
    make_client: Callable[..., TestClient],
) -> None:
    """A day's report counts the reasons of that day's alerts and the feedback received that day."""
    clock = Clock(DAY_1.timestamp())
    client = make_client(clock=clock)
    first = issued(client, NAME)[DURATION]
    unknown = {
        **overridden({"uuid": "f0e1d2c3-0000-4000-8000-000000000000"}),
        "outcomeTimestamp": "2026-11-20T10:01:00Z",
    }
    send_feedback(client, overridden(first, "benefit-outweighs-risk"), unknown)
    clock.set(days=1)
    second = issued(client, NAME)[DURATION]
    send_feedback(client, overridden(second, "already-addressed"))
    day_2 = _figures(client, **{"from": "2026-11-21", "to": "2026-11-21"})
    assert [(r["code"], r["count"]) for r in by_rule(day_2)[DURATION]["override_reasons"]] == [("already-addressed", 1)]
    assert day_2["unmatched_feedback"] == 0
    assert _figures(client, **{"from": "2026-11-20", "to": "2026-11-20"})["unmatched_feedback"] == 1


def _issued_for(client: TestClient, draft: str, name: str = NAME, patient: str = "harness-pt-1") -> dict[str, Any]:
    """The cards of fixture ``name`` for ``patient`` with its draft named ``draft``, by rule id."""
    request = for_patient(fixture(name), patient)
    [entry] = request["context"]["draftOrders"]["entry"]
    entry["resource"]["id"] = draft
    request["context"]["selections"] = [f"MedicationRequest/{draft}"]
    response = client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    return {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}


def test_rules_are_listed_by_alerts_issued_and_reasons_by_how_often_given(client: TestClient) -> None:
    """The most frequent first, whatever their names: what an informaticist reads from the top."""
    issued(client, NAME)  # the duration rule: one alert
    serotonergic = "cyclobenzaprine-serotonergic"
    drafts = ("rx-a", "rx-b", "rx-c")  # the serotonergic rule alone: three alerts
    cards = [
        _issued_for(client, draft, f"{serotonergic}/fires-sertraline-active.json")[serotonergic] for draft in drafts
    ]
    reasons = ("already-addressed", "benefit-outweighs-risk", "benefit-outweighs-risk")
    send_feedback(client, *(overridden(card, reason) for card, reason in zip(cards, reasons, strict=True)))
    body = _figures(client)
    assert [(r["rule_id"], r["issued"]) for r in body["rules"]] == [(serotonergic, 3), (DURATION, 1)]
    given = [(r["code"], r["count"]) for r in by_rule(body)[serotonergic]["override_reasons"]]
    assert given == [("benefit-outweighs-risk", 2), ("already-addressed", 1)]


def test_a_card_issued_at_the_sites_midnight_counts_on_the_day_it_begins(
    make_client: Callable[..., TestClient],
) -> None:
    """A range of days is [first midnight, midnight after the last): the card of 00:00:00 is the new day's."""
    client = make_client(clock=Clock(datetime(2026, 11, 21, tzinfo=UTC).timestamp()))
    issued(client, NAME)
    assert _figures(client, **{"from": "2026-11-20", "to": "2026-11-20"})["rules"] == []
    [duration] = _figures(client, **{"from": "2026-11-21", "to": "2026-11-21"})["rules"]
    assert (duration["rule_id"], duration["issued"], duration["title"]) == (
        DURATION,
        1,
        "Cyclobenzaprine: limit to 2–3 weeks",  # the rule's title, as the report heads its section
    )


def test_a_reason_sent_by_its_code_alone_is_named_as_the_card_named_it(client: TestClient) -> None:
    """A Coding's system is optional: the code of a reason this card offered is the card's reason,
    counted in one row with the same reason sent with its system (two rows, an adversarial review)."""
    card = issued(client, NAME)[DURATION]
    send_feedback(client, {**overridden(card), "overrideReason": {"reason": {"code": "benefit-outweighs-risk"}}})
    other = _issued_for(client, "rx-2")[DURATION]
    send_feedback(client, overridden(other, "benefit-outweighs-risk"))
    own = _issued_for(client, "rx-3")[DURATION]  # a client's own code, no system: kept as sent
    send_feedback(client, {**overridden(own), "overrideReason": {"reason": {"code": "pt-declined"}}})
    reasons = by_rule(_figures(client))[DURATION]["override_reasons"]
    assert [(r["system"], r["code"], r["display"], r["count"]) for r in reasons] == [
        ("urn:back-spasm-cds:override-reason", "benefit-outweighs-risk", "Benefit outweighs risk for this patient", 2),
        (None, "pt-declined", "pt-declined", 1),
    ]
