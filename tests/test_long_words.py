"""The record's words are read in time linear in their length (an adversarial review): a timing's
text of 50 kB of "prn" held the event loop 41 s (the as-needed pattern tried at every "prn"), a
drug name of 16,000 digits beside "SL" took 8 s (its strengths read from every digit) and a
condition's display of letters with an "@" seconds more (a bare email address looked for from
every letter). Each request below took minutes before; the tests assert the answers, never time.
A local timing code is read by its display as by its text (the same review)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture

SANDBOX = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
CIRRHOSIS = "cyclobenzaprine-hepatic-impairment/fires-v2-cirrhosis-unrecorded-severity-5mg-info.json"
DURATION = "cyclobenzaprine-duration"
# Oracle Health's frequency code set (4003), with a tenant's id: a code no terminology knows.
ORACLE_FREQUENCY = "https://fhir.cerner.com/ec2458f2-1e24-41c8-b71b-0e701af7583d/codeSet/4003"
LONG = 100_000


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def with_timing_code(code: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's order timed by ``code`` alone, 90 tablets dispensed (30 days at three a day)."""
    request = fixture(SANDBOX)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["timing"] = {"code": code}
    draft["dispenseRequest"] = {"quantity": {"value": 90, "unit": "tablet", "code": "{tablet}"}}
    return request


def duration_card(client: TestClient, request: dict[str, Any]) -> dict[str, Any]:
    (card,) = cards_for(answered(client, request), DURATION)
    return card


def test_a_local_timing_code_is_read_by_its_display(module: TestClient) -> None:
    request = with_timing_code({"coding": [{"system": ORACLE_FREQUENCY, "code": "696510", "display": "TID"}]})
    card = duration_card(module, request)
    assert (card["indicator"], card["summary"]) == ("warning", "Limit cyclobenzaprine to 2–3 weeks: 30 days planned")


def test_a_timing_of_long_words_is_no_rate(module: TestClient) -> None:
    """As a timing of words no pattern reads: the duration is not known (the info card)."""
    unread = duration_card(module, with_timing_code({"text": "as needed"}))
    card = duration_card(module, with_timing_code({"text": "prn " * (LONG // 4)}))
    assert card["indicator"] == unread["indicator"] == "info"


def test_a_drug_named_with_a_long_number_beside_sl_is_read(module: TestClient) -> None:
    """Its 10 mg is no strength of the sublingual product: the oral tablet, whose duration is checked."""
    request = fixture(SANDBOX)
    concept = request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"]
    concept.pop("coding")
    concept["text"] = f"cyclobenzaprine {'1' * LONG} 10 mg tablet SL"  # no sublingual product's strength
    assert duration_card(module, request)["indicator"] == "warning"


def test_a_strength_past_any_number_beside_sl_is_no_strength(module: TestClient) -> None:
    """10^100000 mg is no float: the "SL" stands (a 500 before: infinity has no rounding)."""
    request = fixture(SANDBOX)
    concept = request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"]
    concept.pop("coding")
    concept["text"] = f"cyclobenzaprine 1{'0' * LONG} mg tablet SL"
    assert cards_for(answered(module, request), DURATION) == []  # the sublingual product: exempt


def test_a_long_condition_display_with_an_at_sign_is_shown_as_text(module: TestClient) -> None:
    request = fixture(CIRRHOSIS)
    condition = request["prefetch"]["conditions"]["entry"][0]["resource"]
    display = "Cirrhosis " + "a" * LONG + "@"
    condition["code"]["text"] = display
    for coding in condition["code"]["coding"]:
        coding["display"] = display
    (card,) = cards_for(answered(module, request), "cyclobenzaprine-hepatic-impairment")
    assert "a" * 1000 in card["detail"]


def with_drug_named(text: str) -> dict[str, Any]:
    request = fixture(SANDBOX)
    concept = request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"]
    concept.pop("coding")
    concept["text"] = text
    return request


@pytest.mark.parametrize("junk", ["1.", "a@", "c "])
def test_a_drug_named_among_many_short_words_is_read(module: TestClient, junk: str) -> None:
    """A word each two characters: the 330 ingredients and brands were each tried at every one
    (4 MB of "1." took 25 s); the trie of their letters reads the name, the tablet and its route."""
    request = with_drug_named(f"Flexeril {junk * (LONG * 20)} 10 mg oral tablet")
    assert duration_card(module, request)["indicator"] == "warning"


def test_a_brand_spelled_with_a_long_s_is_no_error(module: TestClient) -> None:
    """A case-blind "Soma" matched "\u017foma" (U+017F), which is no brand's name in lower case: a 500."""
    said = [answered(module, with_drug_named(f"{soma} 350 mg tablet"))["cards"] for soma in ("\u017foma", "Soma")]
    assert [[card["summary"] for card in cards] for cards in said] == [[], []]


@pytest.mark.parametrize("display", ["TID PRN", "T.I.D.", "tid"])
def test_a_local_timing_code_is_read_by_its_display_as_ehrs_write_it(module: TestClient, display: str) -> None:
    request = with_timing_code({"coding": [{"system": ORACLE_FREQUENCY, "code": "696510", "display": display}]})
    assert duration_card(module, request)["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned"


def test_a_timing_codes_text_is_read_before_its_display(module: TestClient) -> None:
    """ "three times daily" beside a local code displayed "QD": the text's 30 days, not 90 (the
    adversarial review of the display's reading)."""
    coding = {"system": ORACLE_FREQUENCY, "code": "696510", "display": "QD"}
    request = with_timing_code({"text": "three times daily", "coding": [coding]})
    assert duration_card(module, request)["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned"


def updated_name(client: TestClient, name: str) -> str:
    """The drug's name the 21-day update writes for a draft of the cyclobenzaprine ingredient's
    code named ``name``."""
    request = with_drug_named(name)
    concept = request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"]
    concept["coding"] = [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "21949"}]
    [suggestion] = duration_card(client, request)["suggestions"]
    [action] = suggestion["actions"]
    return str(action["resource"]["medicationCodeableConcept"]["text"])


def test_an_update_drops_sl_from_a_name_of_many_spaces(module: TestClient) -> None:
    """The words saying sublingual were looked for from every space of a run: 20,000 took 12 s (a
    code review). The 21-day update names the oral tablet read, without its "SL"."""
    assert updated_name(module, f"cyclobenzaprine 10 mg tablet SL{' ' * LONG}x") == "cyclobenzaprine 10 mg tablet x"


def test_an_update_drops_a_bracket_saying_sl_beside_one_left_open(module: TestClient) -> None:
    """A bracket saying "SL" goes whole (``without_sublingual``); one that never closes, after
    33,000 "SL"s, is looked into once: a pattern trying each "SL" to the end took seconds."""
    name = f"cyclobenzaprine 10 mg tablet (sublingual use) ({'SL ' * (LONG // 3)}"
    assert updated_name(module, name) == "cyclobenzaprine 10 mg tablet ("


def test_a_strength_after_a_comma_is_read(module: TestClient) -> None:
    """ "tablet,10 mg SL": 10 mg, which no sublingual product has, so the oral tablet (its
    duration checked); the strength right after the comma went unread and "SL" stood."""
    assert duration_card(module, with_drug_named("cyclobenzaprine tablet,10 mg SL"))["indicator"] == "warning"


@pytest.mark.parametrize("display", ["QHS", "HS", "hs prn"])
def test_a_local_timing_code_at_bedtime_is_once_a_day(module: TestClient, display: str) -> None:
    """90 tablets at bedtime: 90 days (the last adversarial review: no rate, "duration not said")."""
    request = with_timing_code({"coding": [{"system": ORACLE_FREQUENCY, "code": "696530", "display": display}]})
    assert duration_card(module, request)["summary"] == "Limit cyclobenzaprine to 2–3 weeks: 90 days planned"
