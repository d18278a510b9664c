"""The "Also flagged" line (clinical specification §2, card volume): when a critical card deletes an
order, the cards dropped for that order are named once, on the first such card, and only those of
that order."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markdown_it import MarkdownIt

from tests.conftest import answered, cards_for, fixture
from tests.test_card_volume import ICD10, SCIATICA, condition, names

HEPATIC = "cyclobenzaprine-hepatic-impairment"
MAOI = "cyclobenzaprine-maoi"
# Chronic hepatic failure and cyclobenzaprine 10 mg once a day for 30 days: the critical card deletes
# the draft, and the duration warning it drops is named.
HEPATIC_FAILURE = "cyclobenzaprine-hepatic-impairment/fires-critical-chronic-hepatic-failure.json"
PHENELZINE = "cyclobenzaprine-maoi/fires-phenelzine-active.json"


@pytest.fixture(scope="module")
def module(module_client: TestClient) -> TestClient:
    return module_client


def flagged(card: dict[str, Any]) -> str | None:
    """What the card's "Also flagged" line names, if it has one."""
    _, found, rest = card["detail"].partition("\n\nAlso flagged: ")
    return rest.partition(".\n")[0].removesuffix(".") if found else None


def test_of_two_critical_deletes_for_one_order_only_the_first_names_what_was_dropped(module: TestClient) -> None:
    """Hepatic failure and phenelzine: two critical cards delete the same draft."""
    request = fixture(HEPATIC_FAILURE)
    request["prefetch"]["medications"] = fixture(PHENELZINE)["prefetch"]["medications"]
    body = answered(module, request)
    [maoi], [hepatic] = cards_for(body, MAOI), cards_for(body, HEPATIC)
    assert flagged(maoi) == "Limit cyclobenzaprine to 2–3 weeks: 30 days planned"
    assert flagged(hepatic) is None
    assert "Also flagged" not in hepatic["detail"]


def test_each_deleted_order_names_only_the_cards_dropped_for_it(module: TestClient) -> None:
    """Signing the 30-day draft (request-123) with a 14-day copy (request-456), with hepatic failure:
    each gets its critical card; only the 30-day one had a duration card to drop."""
    request = fixture(HEPATIC_FAILURE)
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    short = copy.deepcopy(request["context"]["draftOrders"]["entry"][0])
    short["resource"]["id"] = "request-456"
    short["resource"]["dispenseRequest"]["expectedSupplyDuration"]["value"] = 14
    request["context"]["draftOrders"]["entry"].append(short)
    by_draft = {
        card["suggestions"][0]["actions"][0]["resourceId"]: card
        for card in cards_for(answered(module, request), HEPATIC)
    }
    assert set(by_draft) == {"MedicationRequest/request-123", "MedicationRequest/request-456"}
    assert names(flagged(by_draft["MedicationRequest/request-123"]) or "", "cyclobenzaprine-duration")
    assert not names(flagged(by_draft["MedicationRequest/request-456"]) or "", "cyclobenzaprine-duration")


def test_a_card_about_the_patient_shown_from_another_order_is_not_named(module: TestClient) -> None:
    """Tizanidine with ciprofloxacin active (its critical card deletes the tizanidine draft) signed
    with a cyclobenzaprine draft, for sciatica of 60 days: the MRI card is about the patient and
    shows from the cyclobenzaprine draft, so the tizanidine card does not name it as dropped."""
    request = fixture("tizanidine-cyp1a2-inhibitor/fires-tizanidine-with-ciprofloxacin-active.json")
    request["hook"] = "order-sign"
    del request["context"]["selections"]
    cyclobenzaprine = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")["context"]["draftOrders"]
    cyclobenzaprine["entry"][0]["resource"]["id"] = "request-900"
    request["context"]["draftOrders"]["entry"] += cyclobenzaprine["entry"]
    request["prefetch"]["conditions"]["entry"] = [SCIATICA]
    body = answered(module, request)
    [critical] = cards_for(body, "tizanidine-cyp1a2-inhibitor")
    assert critical["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/request-123"
    assert cards_for(body, "refractory-spasm-imaging")
    assert "Also flagged" not in critical["detail"]


def test_a_silenced_summary_naming_the_records_words_is_plain_text(module: TestClient) -> None:
    """The line now carries summaries, which name the record's words (a condition's display): a
    link or a tag in them must not show as the service's own."""
    request = fixture(HEPATIC_FAILURE)
    display = "Retention [see](https://example.org/x) <b>urine</b>"
    request["prefetch"]["conditions"]["entry"].append(condition("ret-1", ICD10, "R33.9", display, 20))
    [hepatic] = cards_for(answered(module, request), HEPATIC)
    line = flagged(hepatic) or ""
    assert "atropine-like action: use with caution in retention" in line
    # Raw HTML on, as CommonMark has it; bare addresses linked, as GFM links them.
    html = MarkdownIt("commonmark", {"linkify": True}).enable("linkify").render(line)
    assert re.findall(r"<(\w+)", html) == ["p", "code"]  # no link, no bold: the words as sent
    assert "[see](<code>https://example.org/x)</code> &lt;b&gt;urine&lt;/b&gt;" in html


def test_a_silenced_question_keeps_its_question_mark_alone(module: TestClient) -> None:
    """Tizanidine with ciprofloxacin, tizanidine already active: the duplicate card's summary is a
    question, and the line read "…a renewal or a duplicate?." (a code review)."""
    request = fixture("tizanidine-cyp1a2-inhibitor/fires-tizanidine-with-ciprofloxacin-active.json")
    request["prefetch"]["medications"]["entry"] += fixture("muscle-relaxant-duplicate/fires-tizanidine-active.json")[
        "prefetch"
    ]["medications"]["entry"]
    [critical] = cards_for(answered(module, request), "tizanidine-cyp1a2-inhibitor")
    assert "a renewal or a duplicate?" in (flagged(critical) or "")
    assert "?." not in critical["detail"]
