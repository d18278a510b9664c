"""A snooze scoped to its card's subject: "don't show again" said of a card naming gabapentin
keeps that card away while the next one names gabapentin alone, and lets it back when it names
oxycodone too (a clinical safety review); so for the red flag's conditions. A rule whose card
names nothing besides the order (cyclobenzaprine-duration) is snoozed whole, as before. On the
embedded SQLite file and on PostgreSQL, as every store answers the quiet read."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.conftest import SELECT, Clock, rule_ids
from tests.feedback_calls import keyed_as_before_version_14
from tests.quiet.conftest import (
    DURATION,
    DURATION_WARNING,
    MAOI_CRITICAL,
    SNOOZE_REASON,
    START,
    only_card,
    override,
    reason_codes,
    request,
)

CNS = "muscle-relaxant-cns-depressant"
GABAPENTIN = "muscle-relaxant-cns-depressant/fires-gabapentin-active-baclofen.json"
OXYCODONE = "muscle-relaxant-cns-depressant/fires-oxycodone-active.json"
RED_FLAG = "back-pain-red-flag"
CAUDA_EQUINA = "back-pain-red-flag/fires-cauda-equina-onset-31-days-warning.json"
BONE_METASTASIS = "back-pain-red-flag/fires-bone-metastasis-c79-51.json"


def _service(make_client: Callable[..., TestClient], clock: Clock, database_url: str) -> TestClient:
    return make_client(clock=clock, database_url=database_url)


def _with(name: str, also: str, bundle: str) -> dict[str, Any]:
    """``name``'s request, its prefetch ``bundle`` (medications, conditions) holding ``also``'s too."""
    body = request(name)
    extra = copy.deepcopy(request(also)["prefetch"][bundle]["entry"])
    body["prefetch"][bundle]["entry"] += extra
    body["prefetch"][bundle]["total"] = len(body["prefetch"][bundle]["entry"])
    return body


def _post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(SELECT, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_snoozed_depressant_card_stays_away_for_the_same_drug_and_comes_back_for_a_new_one(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    service = _service(make_client, clock, database_url)
    card = only_card(_post(service, request(GABAPENTIN)), CNS)
    assert card["indicator"] == "warning" and SNOOZE_REASON in reason_codes(card)
    override(service, card)
    clock.set(days=1)
    assert CNS not in rule_ids(_post(service, request(GABAPENTIN)))  # gabapentin again: what it named
    back = only_card(_post(service, _with(GABAPENTIN, OXYCODONE, "medications")), CNS)
    assert "oxycodone" in back["detail"].lower()  # the new drug, named
    assert CNS not in rule_ids(_post(service, request(GABAPENTIN)))  # the snooze itself holds


def test_two_drugs_snoozed_on_two_cards_are_not_snoozed_together(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    """A snooze holds for what one card named: gabapentin's card and oxycodone's, each snoozed,
    do not silence a card naming both, a combination the clinician was never shown."""
    service = _service(make_client, clock, database_url)
    override(service, only_card(_post(service, request(GABAPENTIN)), CNS))
    override(service, only_card(_post(service, request(OXYCODONE)), CNS))
    clock.set(days=1)
    assert CNS not in rule_ids(_post(service, request(GABAPENTIN)))
    assert CNS not in rule_ids(_post(service, request(OXYCODONE)))
    assert CNS in rule_ids(_post(service, _with(GABAPENTIN, OXYCODONE, "medications")))


def test_a_red_flag_snoozed_for_one_condition_comes_back_for_a_new_one(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    service = _service(make_client, clock, database_url)
    card = only_card(_post(service, request(CAUDA_EQUINA)), RED_FLAG)
    assert card["indicator"] == "warning" and SNOOZE_REASON in reason_codes(card)
    override(service, card)
    clock.set(days=1)
    assert RED_FLAG not in rule_ids(_post(service, request(CAUDA_EQUINA)))
    back = only_card(_post(service, _with(CAUDA_EQUINA, BONE_METASTASIS, "conditions")), RED_FLAG)
    assert "C79.51" in back["detail"]


def test_a_rule_whose_card_names_nothing_else_is_snoozed_whole_as_before(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    service = _service(make_client, clock, database_url)
    override(service, only_card(_post(service, request(DURATION_WARNING)), DURATION))
    clock.set(days=1)
    assert DURATION not in rule_ids(_post(service, request(DURATION_WARNING)))


def test_a_snooze_stored_by_the_release_before_silences_no_card_of_a_rule_that_names_a_subject(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    """A card the release before stored (schema version 10) kept no subject: what it named cannot
    be told, so its snooze silences none of this rule's cards (they come back once, and may be
    snoozed again); a rule whose cards name nothing else stays snoozed whole, as it was."""
    before = _service(make_client, clock, database_url)
    override(before, only_card(_post(before, request(GABAPENTIN)), CNS))
    override(before, only_card(_post(before, request(DURATION_WARNING)), DURATION))
    engine = create_engine(database_url)
    with engine.begin() as connection:  # as the release before left it
        connection.execute(text("ALTER TABLE issued_cards DROP COLUMN subject"))
        connection.execute(text("DROP TABLE issued_notices"))
        keyed_as_before_version_14(connection)
        connection.execute(text("ALTER TABLE feedback DROP COLUMN card_sent"))
        connection.execute(text("UPDATE schema_version SET version = 10"))  # created at the last: its one row
    engine.dispose()
    upgraded = make_client(clock=Clock(START + 86_400), database_url=database_url)
    assert upgraded.get("/readyz").json()["checks"]["database"] == "ok, schema version 15"
    assert CNS in rule_ids(_post(upgraded, request(GABAPENTIN)))
    assert DURATION not in rule_ids(_post(upgraded, request(DURATION_WARNING)))


def test_the_critical_maoi_card_is_never_snoozed(
    make_client: Callable[..., TestClient], clock: Clock, database_url: str
) -> None:
    service = _service(make_client, clock, database_url)
    card = only_card(_post(service, request(MAOI_CRITICAL)), "cyclobenzaprine-maoi")
    assert card["indicator"] == "critical" and SNOOZE_REASON not in reason_codes(card)
    override(service, card)  # "don't show again", though not offered
    clock.set(days=1)
    assert "cyclobenzaprine-maoi" in rule_ids(_post(service, request(MAOI_CRITICAL)))
