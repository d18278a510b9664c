"""A drug named in words the eye reads as a drug's name is recognised, whatever characters that do
not show it carries (an adversarial review): "Cyclo\u00adbenzaprine" with a soft hyphen, a zero-width
space, a word joiner or a byte-order mark inside, or in full-width letters, was no drug at all, no
card and no notice, a check silently missed, where a no-break space, "Flexeril®" and upper case
were read. In a draft and in the history alike. What the service sends back is the draft's own
words; a name of nothing but such characters names nothing, and the draft is said not checked."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import answered, cards_for, fixture, rule_ids

SANDBOX = "cyclobenzaprine-duration/fires-sandbox-30-day-supply.json"
MAOI = "cyclobenzaprine-maoi/fires-phenelzine-active.json"


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def drafted(text: str) -> dict[str, Any]:
    """The sandbox's 30-day cyclobenzaprine order, its drug named by ``text`` alone (no code)."""
    request = fixture(SANDBOX)
    request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {"text": text}
    return request


@pytest.mark.parametrize(
    "text",
    [
        "Cyclo\u00adbenzaprine 10 mg tablet",  # soft hyphen
        "Cyclo\u200bbenzaprine 10 mg tablet",  # zero-width space
        "Cyclo\u200dbenza\u200cprine 10 mg tablet",  # zero-width joiner and non-joiner
        "\ufeffCyclo\u2060benzaprine 10 mg tablet",  # byte-order mark, word joiner
        "Ｃｙｃｌｏｂｅｎｚａｐｒｉｎｅ １０ ｍｇ tablet",  # full-width letters and digits
        "Cyclobenzaprine\u200b10\u200bmg tablet",  # zero-width spaces between words
        "Cyclobenzaprine\u206010\u2060mg tablet",  # word joiners between words
        "Cyclo\u034fbenzaprine 10 mg tablet",  # combining grapheme joiner (not Cf)
        "Cyclo\ufe0fbenzaprine 10 mg tablet",  # variation selector
    ],
    ids=[
        "soft-hyphen",
        "zero-width-space",
        "joiners",
        "bom-word-joiner",
        "full-width",
        "zero-width-space-between-words",
        "word-joiner-between-words",
        "grapheme-joiner",
        "variation-selector",
    ],
)
def test_a_drafted_drug_named_with_hidden_characters_is_checked(module: TestClient, text: str) -> None:
    """Read as cyclobenzaprine 10 mg: 30 days planned, past its 2–3 weeks."""
    (card,) = cards_for(answered(module, drafted(text)), "cyclobenzaprine-duration")
    assert (card["indicator"], card["summary"]) == ("warning", "Limit cyclobenzaprine to 2–3 weeks: 30 days planned")


@pytest.mark.parametrize("text", ["Cyclo\u00adbenzaprine 10 mg tablet", "Ｃｙｃｌｏｂｅｎｚａｐｒｉｎｅ 10 mg tablet"])
def test_an_update_sends_the_drug_back_named_as_the_draft_named_it(module: TestClient, text: str) -> None:
    """Matched through the soft hyphen or the full-width letters, never rewritten: the EHR shows
    the prescriber's own words."""
    (card,) = cards_for(answered(module, drafted(text)), "cyclobenzaprine-duration")
    updates = [a["resource"] for s in card["suggestions"] for a in s["actions"] if a["type"] == "update"]
    assert updates
    assert {u["medicationCodeableConcept"]["text"] for u in updates} == {text}


@pytest.mark.parametrize("text", ["\u200b", "\u00ad\u2060 \ufeff", "\u3164", "\u2800"])
def test_a_drug_named_by_nothing_that_shows_is_said_not_checked(module: TestClient, text: str) -> None:
    """As a name of blanks is: no drug can be read, and the answer says so."""
    assert rule_ids(answered(module, drafted(text))) == ["draft-not-checked"]


def test_an_mao_inhibitor_named_with_a_soft_hyphen_in_the_history_is_seen(module: TestClient) -> None:
    """Active phenelzine beside a cyclobenzaprine draft: the critical card, as when it is coded,
    naming the drug in the record's own words."""
    request = fixture(MAOI)
    history = request["prefetch"]["medications"]["entry"][0]["resource"]
    history["medicationCodeableConcept"] = {"text": "Phenel\u00adzine 15 mg tablet"}
    (card,) = cards_for(answered(module, request), "cyclobenzaprine-maoi")
    assert card["indicator"] == "critical"
    assert card["detail"].startswith("MAO inhibitor: **Phenel\u00adzine 15 mg tablet (listed active,")


@pytest.mark.parametrize("between", ["\u200b", "\u00ad"])
def test_an_mao_inhibitor_parted_from_its_strength_by_a_hidden_character_is_seen(
    module: TestClient, between: str
) -> None:
    """ "Phenelzine\u200b15 mg tablet": dropped, the character joined the name to its strength
    ("phenelzine15"), and the critical card that the words as sent had given was lost (a review of
    the diff); read as a space first, the name stands."""
    request = fixture(MAOI)
    history = request["prefetch"]["medications"]["entry"][0]["resource"]
    history["medicationCodeableConcept"] = {"text": f"Phenelzine{between}15 mg tablet"}
    (card,) = cards_for(answered(module, request), "cyclobenzaprine-maoi")
    assert card["indicator"] == "critical"
