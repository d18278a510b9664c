"""Order-sign does not repeat a non-critical card order-select showed the same day for the
unchanged draft; a critical card, a changed draft, another day or another patient, and an accepted
suggestion not applied, all bring it back."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.conftest import SELECT, SIGN, Clock, rule_ids
from tests.quiet.conftest import (
    DURATION,
    DURATION_WARNING,
    HEPATIC,
    HEPATIC_CRITICAL,
    HEPATIC_WARNING,
    MAOI_CRITICAL,
    OTHER_PATIENT,
    PATIENT,
    accept,
    call,
    only_card,
    override,
    request,
)


def sign(client: TestClient, body: dict[str, Any] | str, patient_id: str = PATIENT) -> dict[str, Any]:
    """Order-sign for the same draft, as a client fires it after order-select."""
    signing = request(body, patient_id) if isinstance(body, str) else copy.deepcopy(body)
    signing["hook"] = "order-sign"
    signing["hookInstance"] = str(uuid.uuid4())
    signing["context"].pop("selections", None)
    response = client.post(SIGN, json=signing)
    assert response.status_code == 200, response.text
    return response.json()


def edited(name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = request(name)
    change(body["context"]["draftOrders"]["entry"][0]["resource"])
    return body


def test_order_sign_repeats_the_cards_order_select_showed_another_clinician(service: TestClient, clock: Clock) -> None:
    """An order one clinician pended (order-select) and another signs: the one signing never saw
    its cards (a clinical safety review). The same clinician's signing is not repeated to."""
    assert rule_ids(call(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    clock.set(minutes=5)
    signing = request(HEPATIC_WARNING)
    assert signing["context"]["userId"]  # the fixture's clinician, who saw the cards
    assert sign(service, signing) == {"cards": []}
    signing["context"]["userId"] = "Practitioner/the-attending"
    assert rule_ids(sign(service, signing)) == [HEPATIC, DURATION]


def test_order_sign_with_no_user_repeats_the_cards_order_select_showed(service: TestClient, clock: Clock) -> None:
    """With no ``userId`` (CDS Hooks requires one; the service takes calls without), who saw the
    cards cannot be told: every caller without one counted as one clinician, and the one signing
    lost the warnings another was shown (a conformance review)."""
    selecting = request(HEPATIC_WARNING)
    del selecting["context"]["userId"]
    assert rule_ids(service.post(SELECT, json=selecting).json()) == [HEPATIC, DURATION]
    clock.set(minutes=5)
    assert rule_ids(sign(service, selecting)) == [HEPATIC, DURATION]


def test_order_sign_does_not_repeat_the_cards_order_select_showed_for_the_unchanged_draft(
    service: TestClient, clock: Clock
) -> None:
    assert rule_ids(call(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    clock.set(minutes=5)
    assert sign(service, HEPATIC_WARNING) == {"cards": []}
    # A change no rule reads (a note to the pharmacy) leaves the draft unchanged for this purpose.
    noted = edited(HEPATIC_WARNING, lambda draft: draft.update(note=[{"text": "Dispense in a blister pack"}]))
    assert sign(service, noted) == {"cards": []}
    # Order-select itself answers every re-fire in full: the client replaces the cards it shows.
    assert rule_ids(call(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]


def test_order_sign_fired_again_shows_its_cards_again(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    """Only what order-select showed is not repeated: a signing fired again (the first one
    cancelled, or the order signed again) shows its cards again at the moment of signing. On
    PostgreSQL each call reads what was shown (no answer is kept)."""
    service = make_client(clock=clock, database_url=database_url)
    assert rule_ids(sign(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    clock.set(minutes=5)
    assert rule_ids(sign(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]


@pytest.mark.parametrize("name", [MAOI_CRITICAL, *HEPATIC_CRITICAL])
def test_order_sign_repeats_a_critical_card(service: TestClient, clock: Clock, name: str) -> None:
    [card] = call(service, name)["cards"]
    assert card["indicator"] == "critical"
    clock.set(minutes=5)
    [again] = sign(service, name)["cards"]
    assert (again["source"], again["indicator"]) == (card["source"], "critical")


def test_order_sign_shows_the_card_again_for_a_changed_draft_another_day_or_another_patient(
    service: TestClient, clock: Clock
) -> None:
    call(service, DURATION_WARNING)
    shorter = edited(
        DURATION_WARNING, lambda draft: draft["dispenseRequest"]["expectedSupplyDuration"].update(value=28)
    )
    clock.set(minutes=5)
    [card] = sign(service, shorter)["cards"]  # 28 days: the card says so
    assert "28 days" in card["summary"]
    assert rule_ids(sign(service, DURATION_WARNING, OTHER_PATIENT)) == [DURATION]
    clock.set(days=1)  # the next day (UTC)
    assert rule_ids(sign(service, DURATION_WARNING)) == [DURATION]


def test_a_card_accepted_at_order_select_but_not_applied_is_repeated_at_order_sign(
    service: TestClient, clock: Clock
) -> None:
    """The issue's case: "Limit to 21 days" accepted, the client applied nothing, the 30-day order
    goes to signing: the card must be there."""
    call(service, DURATION_WARNING)  # an earlier re-fire, not accepted
    accept(service, only_card(call(service, DURATION_WARNING), DURATION))
    clock.set(minutes=5)
    assert rule_ids(sign(service, DURATION_WARNING)) == [DURATION]


def test_a_card_dismissed_at_order_select_is_not_repeated_at_order_sign_nor_snoozed(
    service: TestClient, clock: Clock
) -> None:
    override(service, only_card(call(service, DURATION_WARNING), DURATION), reason=None)
    clock.set(minutes=5)
    assert sign(service, DURATION_WARNING) == {"cards": []}
    clock.set(days=1)
    assert rule_ids(call(service, DURATION_WARNING)) == [DURATION]


def test_a_card_whose_words_changed_with_the_patients_data_is_shown_again(service: TestClient, clock: Clock) -> None:
    """The draft unchanged, but the hepatic condition now dated otherwise: its card says another
    "since", so it is not the card order-select showed, and comes back; the duration card is."""
    assert rule_ids(call(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    clock.set(minutes=5)
    redated = request(HEPATIC_WARNING)
    [condition] = [e["resource"] for e in redated["prefetch"]["conditions"]["entry"]]
    for field in ("onsetDateTime", "onsetPeriod", "recordedDate"):
        condition.pop(field, None)
    condition["onsetDateTime"] = "2020-01-15"
    signed = sign(service, redated)
    assert rule_ids(signed) == [HEPATIC]
    assert "2020-01-15" in only_card(signed, HEPATIC)["detail"]


def test_a_draft_changed_only_in_length_brings_back_a_card_that_does_not_speak_of_it(
    service: TestClient, clock: Clock
) -> None:
    """30 days cut to 14 after order-select: the duration card no longer fires, and the hepatic
    card, whose words say nothing of the length, is shown again for the changed draft."""
    assert rule_ids(call(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    shorter = edited(HEPATIC_WARNING, lambda draft: draft["dispenseRequest"]["expectedSupplyDuration"].update(value=14))
    clock.set(minutes=5)
    assert rule_ids(sign(service, shorter)) == [HEPATIC]


def _flexeril(draft: dict[str, Any]) -> None:
    """The brand's 10 mg tablet: the same ingredient, strength and form, another product."""
    coding = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "828350"}
    draft["medicationCodeableConcept"] = {"text": "Flexeril 10 MG Oral Tablet", "coding": [coding]}


def _reason(draft: dict[str, Any]) -> None:
    coding = {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M62.830", "display": "Muscle spasm of back"}
    draft["reasonCode"] = [{"coding": [coding]}]


DRAFT_EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "another draft id": lambda draft: draft.update(id="request-456"),
    "another product of the drug": _flexeril,
    "a reason given": _reason,
    "twice a day": lambda draft: draft["dosageInstruction"][0]["timing"]["repeat"].update(frequency=2),
    "two tablets a dose": lambda draft: draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"].update(value=2),
}


@pytest.mark.parametrize("edit", DRAFT_EDITS, ids=list(DRAFT_EDITS))
def test_a_draft_changed_in_a_fact_a_rule_reads_brings_back_its_cards_though_their_words_are_the_same(
    service: TestClient, clock: Clock, edit: str
) -> None:
    """The clinician changed the order between order-select and order-sign: each card for it is
    a card about a new order, shown again, the duration card too, whose words say nothing of the
    change."""
    first = call(service, HEPATIC_WARNING)
    changed = edited(HEPATIC_WARNING, DRAFT_EDITS[edit])
    clock.set(minutes=5)
    signed = sign(service, changed)
    assert rule_ids(signed) == [HEPATIC, DURATION]
    again, before = only_card(signed, DURATION), only_card(first, DURATION)
    assert (again["summary"], again["detail"]) == (before["summary"], before["detail"])


def test_the_same_length_told_another_way_brings_back_a_card_that_does_not_speak_of_it(
    service: TestClient, clock: Clock
) -> None:
    """30 days told by the dosing's bounds, not the supply: the duration card names where the
    days come from, so it says something new; the hepatic card does not, yet is about a changed
    order."""
    first = only_card(call(service, HEPATIC_WARNING), HEPATIC)

    def bounded(draft: dict[str, Any]) -> None:
        draft["dispenseRequest"].pop("expectedSupplyDuration")
        draft["dosageInstruction"][0]["timing"]["repeat"]["boundsDuration"] = {"value": 30, "code": "d"}

    clock.set(minutes=5)
    signed = sign(service, edited(HEPATIC_WARNING, bounded))
    assert rule_ids(signed) == [HEPATIC, DURATION]
    again = only_card(signed, HEPATIC)
    assert (again["summary"], again["detail"]) == (first["summary"], first["detail"])


def test_order_sign_asked_before_order_select_repeats_nothing_order_select_shows_after(
    service: TestClient, clock: Clock
) -> None:
    """What order-sign read before order-select showed its cards is kept, and dropped when their
    records are written: signing again repeats none of them (kept, it repeated them all day)."""
    assert rule_ids(sign(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    clock.set(minutes=5)
    assert rule_ids(call(service, HEPATIC_WARNING)) == [HEPATIC, DURATION]
    clock.set(minutes=10)
    assert sign(service, HEPATIC_WARNING) == {"cards": []}


def test_an_acceptance_today_costs_order_sign_no_third_read(
    make_client: Callable[..., TestClient], database_url: str, clock: Clock
) -> None:
    """Order-sign's quiet read is two statements (the patient's feedback, the cards shown today);
    an acceptance found among the cards shown today had cost a third (its suggestions): now read
    with the cards shown, the card still repeated as above, and one dismissed still not (SQLite
    and PostgreSQL)."""
    service = make_client(clock=clock, database_url=database_url)
    override(service, only_card(call(service, HEPATIC_WARNING), HEPATIC), reason=None)
    accept(service, only_card(call(service, DURATION_WARNING), DURATION))
    clock.set(minutes=5)
    engine = service.app.state.runtime.store.engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "issued_cards" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert rule_ids(sign(service, DURATION_WARNING)) == [DURATION]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 2, "\n\n".join(statements)
    assert HEPATIC not in rule_ids(sign(service, HEPATIC_WARNING))
